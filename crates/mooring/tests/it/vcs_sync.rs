//! The same commands and configuration for every source kind, on real servers on
//! loopback (`svnserve`, `hg serve`, `git daemon`) and the machine's Docker; and Git
//! commit verification in the daemon (GnuPG-signed commits).

use crate::common::daemon::{wait_until, Server};
use crate::common::*;
use mooring_testkit::{hg, signing, svn};

#[test]
fn one_shot_sync_from_subversion_and_mercurial() {
    // Subversion over svn://, a path in trunk.
    let app = TestApp::new("msvn");
    let repo = svn::Repo::new("infra");
    repo.write("apps/demo/compose.yaml", &demo_compose(&app.name, "one"))
        .write("apps/demo/site/index.html", "s1");
    let r1 = repo.commit("one");
    let server = svn::Server::serve(&repo);
    let url = server.url(&repo);
    let out = app.expect(0, &["sync", &url, "--ref", "trunk", "--path", "apps/demo"]);
    assert!(
        out.contains(&format!("trunk@r{r1}")),
        "the svn revision is shown: {out}"
    );
    assert!(env_of(&app.container("web")).contains("GREETING=one"));
    repo.write("apps/demo/compose.yaml", &demo_compose(&app.name, "two"));
    repo.commit("two");
    let diff = app.expect(2, &["diff", &url, "--ref", "trunk", "--path", "apps/demo"]);
    assert!(diff.contains("environment GREETING changed"), "{diff}");
    app.expect(0, &["sync", &url, "--ref", "trunk", "--path", "apps/demo"]);
    assert!(env_of(&app.container("web")).contains("GREETING=two"));
    // Pinned to the first revision.
    app.expect(
        0,
        &[
            "sync",
            &url,
            "--ref",
            &format!("trunk@{r1}"),
            "--path",
            "apps/demo",
        ],
    );
    assert!(env_of(&app.container("web")).contains("GREETING=one"));

    // Mercurial over HTTP (hg serve).
    let app = TestApp::new("mhg");
    let repo = hg::Repo::new("infra");
    repo.write("compose.yaml", &demo_compose(&app.name, "hg1"))
        .write("site/index.html", "h1");
    let node = repo.commit("one");
    let server = hg::Server::serve(&repo);
    let src = format!("hg+{}", server.url());
    let out = app.expect(0, &["sync", &src, "--ref", "default"]);
    assert!(
        out.contains(&node[..12]),
        "the changeset id is shown: {out}"
    );
    assert!(env_of(&app.container("web")).contains("GREETING=hg1"));
    repo.write("compose.yaml", &demo_compose(&app.name, "hg2"));
    repo.commit("two");
    app.expect(0, &["sync", &src]);
    assert!(env_of(&app.container("web")).contains("GREETING=hg2"));
    app.expect(0, &["diff", &src]);
}

#[test]
fn daemon_follows_svn_and_hg_sources() {
    let a = TestApp::new("dsvn");
    let b = TestApp::new("dhg");
    let srepo = svn::Repo::new("ops");
    srepo
        .write("apps/a/compose.yaml", &demo_compose(&a.name, "s1"))
        .write("apps/a/site/i", "x");
    srepo.commit("one");
    let sserver = svn::Server::serve(&srepo);
    let hrepo = hg::Repo::new("ops");
    hrepo
        .write("compose.yaml", &demo_compose(&b.name, "h1"))
        .write("site/i", "x");
    hrepo.commit("one");
    let hserver = hg::Server::serve(&hrepo);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ svn: {}, ref: trunk, path: apps/a }}\n    sync: {{ interval: 1s }}\n  - name: {}\n    source: {{ hg: {}, ref: default }}\n    sync: {{ interval: 1s }}\n",
            a.name,
            sserver.url(&srepo),
            b.name,
            hserver.url()
        ),
    );
    wait_until(90, "both synced", || {
        s.app(&a.name)["sync"] == "Synced" && s.app(&b.name)["sync"] == "Synced"
    });
    assert!(
        s.app(&a.name)["revision_describe"]
            .as_str()
            .unwrap()
            .starts_with("trunk@r"),
        "{}",
        s.app(&a.name)
    );
    srepo.write("apps/a/compose.yaml", &demo_compose(&a.name, "s2"));
    srepo.commit("two");
    hrepo.write("compose.yaml", &demo_compose(&b.name, "h2"));
    hrepo.commit("two");
    wait_until(60, "svn change deployed", || {
        env_of(&a.container("web")).contains("GREETING=s2")
    });
    wait_until(60, "hg change deployed", || {
        env_of(&b.container("web")).contains("GREETING=h2")
    });
}

#[test]
fn unsigned_commits_are_not_deployed() {
    let app = TestApp::new("dsig");
    let key = signing::GpgKey::generate("Ops", "ops@example.com");
    let stranger = signing::GpgKey::generate("Mallory", "mallory@example.com");
    let repo = Repo::new("signed");
    let commit = |k: Option<&signing::GpgKey>, msg: &str| {
        mooring_testkit::git::git(&repo.work, &["add", "-A"]);
        match k {
            Some(k) => k.git(&repo.work, &["commit", "-q", "-S", "-m", msg]),
            None => mooring_testkit::git::git(&repo.work, &["commit", "-q", "-m", msg]),
        };
        mooring_testkit::git::git(&repo.work, &["push", "-q", "origin", "HEAD:main"]);
    };
    repo.write("compose.yaml", &demo_compose(&app.name, "signed1"))
        .write("site/i", "x");
    commit(Some(&key), "signed one");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ops.asc"), key.public_armored()).unwrap();
    let s = Server::start(
        dir.path(),
        &format!("server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ git: {}, ref: main, verify: {{ mode: head, keys: [ops.asc] }} }}\n    sync: {{ interval: 1s }}\n", app.name, repo.file_url()),
    );
    let web = app.container("web");
    wait_until(60, "signed commit deployed", || {
        env_of(&web).contains("GREETING=signed1")
    });

    repo.write("compose.yaml", &demo_compose(&app.name, "unsigned"));
    commit(None, "unsigned");
    wait_until(30, "verification failure reported", || {
        s.app(&app.name)["conditions"]
            .to_string()
            .contains("VerificationFailed")
    });
    assert!(
        env_of(&web).contains("GREETING=signed1"),
        "the last verified revision keeps running"
    );
    repo.write("compose.yaml", &demo_compose(&app.name, "stranger"));
    commit(Some(&stranger), "signed by an unknown key");
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(env_of(&web).contains("GREETING=signed1"));
    // Self-heal still works on the last verified revision.
    docker(&["rm", "-f", &web]);
    wait_until(30, "healed on the verified revision", || {
        env_of(&web).contains("GREETING=signed1")
    });

    repo.write("compose.yaml", &demo_compose(&app.name, "signed2"));
    commit(Some(&key), "signed two");
    wait_until(30, "next signed commit deployed", || {
        env_of(&web).contains("GREETING=signed2")
    });
    wait_until(10, "condition cleared", || {
        !s.app(&app.name)["conditions"]
            .to_string()
            .contains("VerificationFailed")
    });
}

#[test]
fn source_credentials_never_leak() {
    let app = TestApp::new("dcred");
    let secret = format!("s3cr3t-{}", std::process::id());
    let repo = svn::Repo::new("locked");
    repo.write("compose.yaml", &demo_compose(&app.name, "locked"))
        .write("site/i", "x");
    repo.commit("one");
    repo.require_password("ops", &secret);
    let server = svn::Server::serve(&repo);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("svn.password"), format!("{secret}\n")).unwrap();
    let cfg = |password: &str| {
        format!(
            "server: {{ listen: 127.0.0.1:{{port}}, data_dir: ./state }}\napps:\n  - name: {}\n    source: {{ svn: {}, username: ops, password: {password} }}\n    sync: {{ interval: 1s }}\n",
            app.name,
            server.url(&repo)
        )
    };
    let s = Server::start(dir.path(), &cfg("file:svn.password"));
    wait_until(60, "synced with credentials", || {
        s.app(&app.name)["sync"] == "Synced"
    });
    assert!(env_of(&app.container("web")).contains("GREETING=locked"));
    // A wrong password: the error is reported without the password in it.
    let wrong = format!("wrong-{secret}");
    std::fs::write(dir.path().join("svn.password"), &wrong).unwrap();
    assert_eq!(
        s.call("POST", "/api/v1/reload", Some(&s.admin), None).0,
        200
    );
    wait_until(60, "the auth failure reported", || {
        s.app(&app.name)["conditions"]
            .to_string()
            .contains("source:")
    });
    let mut everything = s.logs();
    everything += &s.app(&app.name).to_string();
    everything += &s.get("/api/v1/events").to_string();
    everything += &s
        .get(&format!("/api/v1/apps/{}/operations", app.name))
        .to_string();
    everything +=
        &String::from_utf8_lossy(&std::fs::read(dir.path().join("state/mooring.db")).unwrap());
    if let Ok(wal) = std::fs::read(dir.path().join("state/mooring.db-wal")) {
        everything += &String::from_utf8_lossy(&wal);
    }
    for entry in walk(&dir.path().join("state/sources")) {
        everything += &entry;
    }
    assert!(!everything.contains(&secret), "the secret leaked");
}
