//! The documentation, run, so that it cannot rot:
//!
//! - here: README's walk-through, taken from README.md itself and run with bash against a fresh
//!   server, each response checked;
//! - `readme/help.rs`: `tollgate --help` and every sub-command's help against README's
//!   command-line section;
//! - `readme/operators.rs`: docs/operators.md against the deployment.toml keys the server knows;
//! - `readme/examples.rs`: the example plugins of docs/plugins.md, built out of tree, dropped in
//!   and used over HTTP;
//! - `readme/snippets.rs`: the code the guides quote is, word for word, the code in the repository;
//! - `readme/wso2.rs`: the WSO2 token requests docs/from-wso2.md says work unchanged, do.
//!
//! How the walk-through runs: every ```` ```sh ```` block between `<!-- walkthrough:begin -->` and
//! `<!-- walkthrough:end -->` is one step. The steps run in order in one bash (`set -euo
//! pipefail`), from the workspace root as a reader's terminal would, against a server started
//! from the shipped `conf/identity.xml` with the bundled plugins, TLS on (self-signed) and a
//! generated admin password. Only what must differ from a reader's machine is replaced (see
//! [`substitutions`]). `curl` is wrapped to write each answer's HTTP status to stderr, so the
//! commands stay the README's own; the test then checks, step by step, the statuses and the JSON
//! the step printed. Token values are never printed, even on failure.

mod common;
#[path = "readme/examples.rs"]
mod examples;
#[path = "readme/help.rs"]
mod help;
#[path = "readme/operators.rs"]
mod operators;
#[path = "readme/snippets.rs"]
mod snippets;
#[path = "readme/wso2.rs"]
mod wso2;

use common::{bundled_plugins, conf_dir, free_port, root, tollgate, Server};
use serde_json::Value;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BEGIN: &str = "<!-- walkthrough:begin -->";
const END: &str = "<!-- walkthrough:end -->";
/// Ends each step's output, on stdout and on stderr.
const STEP_END: &str = "@@step-end";
/// Precedes the HTTP status curl writes to stderr.
const STATUS: &str = "@@status ";

/// The `sh` blocks of the README's walk-through, in order.
fn walkthrough(readme: &str) -> Vec<String> {
    let begin = readme
        .find(BEGIN)
        .expect("README.md has the walk-through begin marker");
    let end = readme
        .find(END)
        .expect("README.md has the walk-through end marker");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme[begin..end].lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(
        current.is_none(),
        "an sh block of the walk-through is not closed"
    );
    blocks
}

/// What differs between a reader's terminal and this test, and nothing else: the server's URL,
/// its generated password file, the directory of the `tollgate` binary, the JWKS port.
fn substitutions(url: &str, data: &str, jwks_port: u16) -> Vec<(&'static str, String)> {
    let bin = tollgate();
    let bin_dir = bin.parent().expect("the binary has a directory");
    vec![
        ("https://localhost:9443", url.to_owned()),
        ("data/admin-password", format!("{data}/admin-password")),
        ("$PWD/target/release", bin_dir.display().to_string()),
        ("127.0.0.1:9080", format!("127.0.0.1:{jwks_port}")),
    ]
}

/// The bash script: the steps, each followed by an end marker on both streams.
fn script(steps: &[String], substitutions: &[(&str, String)]) -> String {
    let mut script = String::from(
        "set -euo pipefail\n\
         curl() { command curl -q -w '%{stderr}@@status %{http_code}\\n' \"$@\"; }\n",
    );
    for step in steps {
        let mut step = step.clone();
        for (from, to) in substitutions {
            step = step.replace(from, to);
        }
        script.push_str(&step);
        script.push_str(&format!("printf '\\n{STEP_END}\\n'; echo {STEP_END} >&2\n"));
    }
    script
}

/// What one step printed: the JSON documents (lines starting with `{`) and the HTTP statuses.
#[derive(Debug, Default)]
struct StepOutput {
    json: Vec<Value>,
    statuses: Vec<u16>,
}

/// Runs `script` with bash from the workspace root in its own process group (so that a
/// background job the walk-through leaves behind dies with it); (success, stdout, stderr).
fn run_bash(script: &str) -> (bool, String, String) {
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("bash runs");
    let pgid = child.id();
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout")));
    let err = reader(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for bash") {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(180) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Whatever is left of the walk-through's process group (only ever ours) goes now.
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    assert!(
        status.is_some(),
        "the walk-through did not finish within 180 s"
    );
    (status.is_some_and(|s| s.success()), out, err)
}

/// Splits the streams at the step markers.
fn outputs(stdout: &str, stderr: &str) -> Vec<StepOutput> {
    let mut steps: Vec<StepOutput> = stdout
        .split(&format!("\n{STEP_END}\n"))
        .map(|text| StepOutput {
            json: text
                .lines()
                .filter(|l| l.starts_with('{'))
                .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
                .collect(),
            statuses: Vec::new(),
        })
        .collect();
    let mut step = 0;
    for line in stderr.lines() {
        if line == STEP_END {
            step += 1;
        } else if let (Some(code), Some(out)) = (line.strip_prefix(STATUS), steps.get_mut(step)) {
            out.statuses.push(code.trim().parse().unwrap_or(0));
        }
    }
    steps
}

/// `value` with its secrets and tokens replaced, for failure messages.
fn redacted(value: &Value) -> Value {
    let mut value = value.clone();
    if let Some(map) = value.as_object_mut() {
        for key in ["access_token", "refresh_token", "client_secret", "token"] {
            if map.contains_key(key) {
                map.insert(key.into(), "<redacted>".into());
            }
        }
    }
    value
}

fn is_text(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty())
}

/// What each step must answer: its HTTP statuses, and a check of the JSON it printed.
type Check = Box<dyn Fn(&[Value]) -> bool>;

fn expectations(url: &str) -> Vec<(&'static str, Vec<u16>, Check)> {
    let alias = format!("{url}/oauth2/token");
    vec![
        ("set up the shell", vec![], Box::new(|j| j.is_empty())),
        (
            "serve the IdP's JWKS",
            vec![200],
            Box::new(|j| {
                let key = &j[0]["keys"][0];
                key["kid"] == "idp-1" && key["kty"] == "RSA" && key.get("d").is_none()
            }),
        ),
        (
            "register the IdP",
            vec![201],
            Box::new(move |j| {
                j[0]["name"] == "https://idp.example.com"
                    && j[0]["alias"] == *alias
                    && is_text(&j[0]["id"])
            }),
        ),
        (
            "register the JWT bearer client",
            vec![201],
            Box::new(|j| is_text(&j[0]["client_id"]) && is_text(&j[0]["client_secret"])),
        ),
        (
            "the JWT bearer grant",
            vec![200],
            Box::new(|j| {
                j[0]["token_type"] == "Bearer"
                    && is_text(&j[0]["access_token"])
                    && is_text(&j[0]["refresh_token"])
                    && j[0]["scope"] == "openid"
                    && j[0]["expires_in"].as_u64().is_some_and(|s| s > 0)
            }),
        ),
        (
            "the replayed JWT",
            vec![400],
            Box::new(|j| j[0]["error"] == "invalid_grant"),
        ),
        (
            "introspection",
            vec![200],
            Box::new(|j| {
                j[0]["active"] == true && j[0]["sub"] == "alice" && j[0]["scope"] == "openid"
            }),
        ),
        (
            "register the private_key_jwt client",
            vec![201],
            Box::new(|j| {
                j[0]["client_id"] == "svc"
                    && j[0]["token_endpoint_auth_method"] == "private_key_jwt"
                    && j[0].get("client_secret").is_none()
            }),
        ),
        (
            "private_key_jwt",
            vec![200],
            Box::new(|j| {
                j[0]["token_type"] == "Bearer"
                    && is_text(&j[0]["access_token"])
                    && j[0].get("refresh_token").is_none()
            }),
        ),
        ("stop the JWKS server", vec![], Box::new(|j| j.is_empty())),
    ]
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let steps = walkthrough(&readme);

    let base = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let deployment = format!("[server]\nbase_url = \"{url}\"\nbind = \"127.0.0.1:{port}\"\n");
    let identity = std::fs::read_to_string(root().join("conf/identity.xml")).expect("identity.xml");
    let conf = conf_dir(base.path(), &deployment, &identity);
    bundled_plugins(&base.path().join("dropins"));
    let server = Server::start(&conf, &[]);
    assert_eq!(server.url, url);

    let data = base.path().join("data").display().to_string();
    let substitutions = substitutions(&url, &data, free_port());
    let text = steps.concat();
    for (from, _) in &substitutions {
        assert!(
            text.contains(from),
            "the walk-through no longer uses {from:?}: update substitutions() in tests/readme.rs"
        );
    }
    let (ok, stdout, stderr) = run_bash(&script(&steps, &substitutions));
    let outputs = outputs(&stdout, &stderr);
    let expected = expectations(&url);
    assert_eq!(
        steps.len(),
        expected.len(),
        "README's walk-through has {} steps, tests/readme.rs expects {}: update expectations()",
        steps.len(),
        expected.len()
    );
    for (i, (what, statuses, check)) in expected.iter().enumerate() {
        let Some(out) = outputs.get(i) else {
            panic!("step {i} ({what}) did not run (bash stopped early); stderr:\n{stderr}");
        };
        let shown: Vec<Value> = out.json.iter().map(redacted).collect();
        assert_eq!(
            &out.statuses, statuses,
            "step {i} ({what}): HTTP statuses; it printed {shown:?}; stderr:\n{stderr}"
        );
        let printed_json = !out.json.is_empty() || statuses.is_empty();
        assert!(
            printed_json && check(&out.json),
            "step {i} ({what}): unexpected answer {shown:?}"
        );
    }
    assert!(ok, "the walk-through's bash failed; stderr:\n{stderr}");
    assert!(server.terminate().success());
}

#[test]
fn the_walkthrough_extraction_takes_sh_blocks_between_the_markers_only() {
    let readme = format!(
        "```sh\nbefore\n```\n{BEGIN}\ntext\n```sh\na\nb\n```\n```toml\nx = 1\n```\n```sh\nc\n```\n{END}\n```sh\nafter\n```\n"
    );
    assert_eq!(walkthrough(&readme), ["a\nb\n", "c\n"]);
    let out = outputs(
        "{\"a\":1}\n@@step-end\nJWKS served at x\n{\"b\":2}\n@@step-end\n",
        "@@status 201\n@@step-end\nnoise\n@@status 200\n@@step-end\n",
    );
    assert_eq!(
        (out[0].statuses.clone(), out[0].json.clone()),
        (vec![201], vec![serde_json::json!({"a": 1})])
    );
    assert_eq!(
        (out[1].statuses.clone(), out[1].json.clone()),
        (vec![200], vec![serde_json::json!({"b": 2})])
    );
    let hidden = redacted(&serde_json::json!({"access_token": "t", "token_type": "Bearer"}));
    assert_eq!(hidden["access_token"], "<redacted>");
}
