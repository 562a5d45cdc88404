//! Standard output for every command. The `println!` and `print!` defined here shadow
//! std's in this crate: once the reader is gone (`mooring app list | head -1`) the
//! command ends quietly with exit code 0 — as ripgrep does — where std's would panic on
//! the broken pipe (exit 101). Any other failure to write is an error (exit 1).

use std::fmt;
use std::io::{self, Write};

/// `println!`, quiet on a broken pipe.
macro_rules! println {
    () => {
        $crate::stdout::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!`, quiet on a broken pipe.
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*))
    };
}

/// Writes to standard output; ends the process when it cannot.
pub fn write(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}
