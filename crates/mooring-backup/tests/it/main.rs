//! The backup engine's integration tests, one test binary: archives written, verified,
//! damaged, listed and restored on real folders.
mod common;

mod catalogue;
mod damage;
mod roundtrip;
