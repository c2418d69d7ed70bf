//! Every example configuration in `examples/` passes `hookbridge check-config`, which builds
//! its connections' clients and its integrations (calling no service). Secrets named with
//! `{ env = "..." }` get placeholder values; `{ file = "..." }` secrets are written to a
//! scratch directory.

use std::path::{Path, PathBuf};
use std::process::Command;

fn example_configs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("integrations")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml")
                && path.file_name().is_some_and(|n| n != "Cargo.toml")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The values `{ env = "NAME" }` and `{ file = "PATH" }` refer to.
fn references(text: &str, kind: &str) -> Vec<String> {
    let needle = format!("{kind} = \"");
    text.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &text[at + needle.len()..];
            rest.split_once('"').map(|(name, _)| name.to_owned())
        })
        .collect()
}

#[test]
fn every_example_config_passes_check_config() {
    let configs = example_configs();
    assert!(
        configs.iter().any(|p| p.ends_with("hookbridge.toml")),
        "examples/hookbridge.toml is missing"
    );
    let scratch = tempfile::tempdir().unwrap();
    for path in configs {
        let text = std::fs::read_to_string(&path).unwrap();
        // Absolute secret files are rewritten into the scratch directory.
        let mut text = text.clone();
        for file in references(&text, "file") {
            let target = scratch
                .path()
                .join(file.trim_start_matches('/').replace('/', "_"));
            std::fs::write(&target, "placeholder-secret-from-a-file\n").unwrap();
            text = text.replace(
                &format!("file = \"{file}\""),
                &format!("file = {:?}", target.display().to_string()),
            );
        }
        let copy = scratch.path().join(path.file_name().unwrap());
        std::fs::write(&copy, &text).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookbridge"));
        command.args(["check-config", "--config"]).arg(&copy);
        for name in references(&text, "env") {
            let value = if name.contains("PRIVATE_KEY") || name.contains("_PEM") {
                TEST_RSA_KEY.to_owned()
            } else if name == "HOOKBRIDGE_TOKEN_KEY" {
                // 32 bytes, base64.
                "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=".to_owned()
            } else {
                format!("placeholder-{}-value-0123456789", name.to_lowercase())
            };
            command.env(name, value);
        }
        command.env(
            "HOOKBRIDGE_TOKEN_KEY",
            "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=",
        );
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{} fails check-config:\n{}{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A test-only RSA key (the GitHub App sample's), only for parsing.
const TEST_RSA_KEY: &str =
    include_str!("../../providers/samples/github/TEST-ONLY-app-private-key.pem");
