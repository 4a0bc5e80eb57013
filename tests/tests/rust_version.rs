//! The workspace's `rust-version` is one that compiles its code: let-chains (`if let … && …`)
//! are stable since Rust 1.88, so a workspace using them must not declare less.

use std::path::{Path, PathBuf};

/// Rust release that stabilised let-chains (edition 2024).
const LET_CHAINS: (u32, u32) = (1, 88);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn declared_rust_version() -> (u32, u32) {
    let manifest = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("rust-version"))
        .expect("the workspace declares a rust-version");
    let version = line.split('"').nth(1).expect("a quoted version");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap());
    (parts.next().unwrap(), parts.next().unwrap_or(0))
}

/// A source file with an `if let` / `while let` whose condition goes on with `&&`.
fn first_let_chain(dir: &Path) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() && name != "target" && !name.to_string_lossy().starts_with('.') {
            if let Some(found) = first_let_chain(&path) {
                return Some(found);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().map(str::trim_start).collect();
            if lines.windows(2).any(|pair| {
                (pair[0].starts_with("if let ") || pair[0].starts_with("while let "))
                    && !pair[0].ends_with('{')
                    && pair[1].starts_with("&& ")
            }) {
                return Some(path);
            }
        }
    }
    None
}

#[test]
fn the_declared_rust_version_compiles_the_let_chains_the_code_uses() {
    let Some(file) = first_let_chain(&workspace()) else {
        return;
    };
    assert!(
        declared_rust_version() >= LET_CHAINS,
        "{} uses let-chains, stable since {}.{}, but the workspace declares rust-version {:?}",
        file.display(),
        LET_CHAINS.0,
        LET_CHAINS.1,
        declared_rust_version()
    );
}
