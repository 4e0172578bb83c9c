//! Python tools the tests drive (Microsoft's Python SDK, the Bicep parser), installed on demand
//! with pinned versions into a virtualenv under `target/devstack/python/<name>`; one install
//! however many tests ask at once.

use anyhow::{Context, bail};
use std::path::PathBuf;

/// The interpreter of virtualenv `name` holding exactly `packages` (pinned requirements).
pub fn venv(name: &str, packages: &[&str]) -> anyhow::Result<PathBuf> {
    let root = devstack::stack::target_dir().join("devstack/python");
    let venv = root.join(name);
    let python = venv.join("bin/python");
    let marker = venv.join(".installed");
    std::fs::create_dir_all(&root)?;
    let lock = std::fs::File::create(root.join(format!(".{name}.lock")))?;
    lock.lock()?;
    let wanted = packages.join(" ");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return Ok(python);
    }
    let run = |command: &mut std::process::Command, what: &str| -> anyhow::Result<()> {
        let output = command
            .output()
            .with_context(|| format!("{what}: python3 is not installed"))?;
        if !output.status.success() {
            bail!(
                "{what} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    };
    run(
        std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv),
        "creating a virtualenv (apt-get install python3-venv if missing)",
    )?;
    run(
        std::process::Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(packages),
        "pip install (is the PyPI registry reachable?)",
    )?;
    std::fs::write(&marker, wanted)?;
    Ok(python)
}
