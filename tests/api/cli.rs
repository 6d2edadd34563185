//! The command line: `check-config` prints the effective config with secrets redacted, and a
//! bad file exits non-zero naming the key.

use std::process::Command;

fn check_config(text: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_filmgate"))
        .args(["check-config", "--config"])
        .arg(&path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_prints_the_effective_config_with_tokens_redacted() {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml")).unwrap();
    let (ok, out, err) = check_config(
        &shipped,
        &[
            ("FILMGATE__UPSTREAM__TOKEN", "hunter2"),
            ("FILMGATE__UPSTREAM__CONCURRENCY", "2"),
        ],
    );
    assert!(ok, "{err}");
    assert!(!out.contains("hunter2"), "{out}");
    assert!(out.contains("token = \"<redacted>\""), "{out}");
    assert!(out.contains("concurrency = 2"), "{out}");
    assert!(out.contains("port = \"sim\""), "{out}");
}

#[test]
fn check_config_errors_name_the_key() {
    let cases = [
        ("[queue]\ncommit_intervall_ms = 5\n", "commit_intervall_ms"),
        ("[upstream]\nconcurrency = \"four\"\n", "concurrency"),
        (
            "[[serial]]\nname = \"a\"\nport = \"sim\"\nparity = \"sideways\"\n",
            "parity",
        ),
        ("[[serial]]\nname = \"a\"\n", "serial[0].port"),
        // Typed at load: the line, the key and what it takes.
        (
            "[[serial]]\nname = \"a\"\nport = \"/dev/x\"\ndata_bits = 9\n",
            "line 4, column 13",
        ),
        (
            "[[serial]]\nname = \"a\"\nport = \"/dev/x\"\ndata_bits = 9\n",
            "data_bits must be 5, 6, 7 or 8, found 9",
        ),
    ];
    for (text, key) in cases {
        let (ok, _, err) = check_config(text, &[]);
        assert!(!ok, "{text} was accepted");
        assert!(
            err.contains(key),
            "error for {text:?} does not name {key}: {err}"
        );
    }
    let (ok, _, err) = check_config("", &[("FILMGATE__QUEUE__MAX_ITEMS", "many")]);
    assert!(!ok && err.contains("FILMGATE__QUEUE__MAX_ITEMS"), "{err}");
}

#[test]
fn a_node_that_cannot_reach_its_database_exits_2_naming_the_key_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    std::fs::write(
        &config,
        format!(
            "[web]\nbind = \"127.0.0.1:0\"\nrecords_db = \"postgres://gw:s3cret@127.0.0.1:1/records\"\n\
             [queue]\npath = \"{}\"\n",
            dir.path().join("queue.sqlite3").display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_filmgate"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("web.records_db"), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn check_config_redacts_a_token_in_the_userinfo_and_secret_query_values() {
    let (ok, out, err) = check_config(
        "[upstream]\nbase_url = \"https://ghp_T0kenSECRET@records.plant/api/?api_key=K3ySECRET&x=1\"\n",
        &[],
    );
    assert!(ok, "{err}");
    assert!(
        !out.contains("T0kenSECRET") && !out.contains("K3ySECRET"),
        "{out}"
    );
    assert!(
        out.contains("https://<redacted>@records.plant/api/?api_key=<redacted>&x=1"),
        "{out}"
    );
}

#[test]
fn a_config_file_holding_a_secret_that_others_may_write_is_named_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "[web]\ntoken = \"s3cret-token\"\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_filmgate"))
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warning = stderr
        .lines()
        .find(|l| l.contains("WARN") && l.contains("holds a secret"))
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    assert!(warning.contains(&path.display().to_string()), "{warning}");
    assert!(
        warning.contains("mode 0666") && warning.contains("web.token"),
        "{warning}"
    );
    assert!(!stderr.contains("s3cret-token"), "{stderr}");
}

#[test]
fn a_start_up_error_says_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    // The queue's directory would have to be where a file is.
    std::fs::write(dir.path().join("blocker"), b"").unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[web]\nbind = \"127.0.0.1:0\"\nrecords_db = \"{}\"\n[queue]\npath = \"{}\"\n",
            dir.path().join("records.sqlite3").display(),
            dir.path().join("blocker/queue.sqlite3").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_filmgate"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("filmgate: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert_eq!(line.matches("is not a directory").count(), 1, "{line}");
}
