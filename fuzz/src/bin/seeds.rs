//! Writes seed corpora: every shipped sample, signed for each configuration of its provider,
//! the example configurations, and form-encoded samples. Build and run from `fuzz/`:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz build --sanitizer none seeds`, then
//! `target/<host triple>/release/seeds` (it is built instrumented, like the targets).

// Links libFuzzer's coverage callbacks: every crate here is built instrumented.
use libfuzzer_sys as _;
use std::path::Path;

use hookbridge_fuzz::{encode, variants};
use time::OffsetDateTime;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let now = OffsetDateTime::now_utc();
    let mut count = 0;
    for kind in [
        "github",
        "gitlab",
        "jira",
        "pagerduty",
        "slack",
        "trello",
        "asana",
        "travis",
        "standard-webhooks",
    ] {
        let target = format!("provider_{}", kind.replace('-', "_"));
        for (v, variant) in variants(kind).iter().enumerate() {
            for (i, sample) in variant.provider.samples().iter().enumerate() {
                let Ok(signed) = variant.provider.sign(
                    sample.event_type,
                    sample.json.as_bytes(),
                    &format!("seed-{i}"),
                    now,
                ) else {
                    continue;
                };
                let mut input = vec![v as u8];
                input.extend(encode(&signed));
                write(&target, &format!("v{v}-{i}"), &input);
                count += 1;
                let is_form = signed
                    .headers
                    .get("content-type")
                    .is_some_and(|ct| ct.as_bytes().starts_with(b"application/x-www-form"));
                if is_form {
                    let pick = match kind {
                        "github" => 0u8,
                        "slack" => 1,
                        _ => 2,
                    };
                    let mut input = vec![pick];
                    input.extend_from_slice(&signed.body);
                    write("form", &format!("{kind}-{i}"), &input);
                }
            }
        }
    }
    // GitHub's form encoding of its JSON samples.
    for (i, sample) in hookbridge_providers::samples("github").iter().enumerate() {
        let form: String = url_encode(sample.json);
        let mut input = vec![0u8];
        input.extend_from_slice(format!("payload={form}").as_bytes());
        write("form", &format!("github-json-{i}"), &input);
    }
    for name in ["hookbridge.toml", "dev.toml"] {
        let text = std::fs::read(Path::new("../examples").join(name)).unwrap();
        write("config", name, &text);
    }
    println!("{count} signed seeds written under corpus/");
}

fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
