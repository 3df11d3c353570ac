//! Child processes that cannot outlive the test.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

/// A child process killed (SIGKILL) when dropped.
#[derive(Debug)]
pub(crate) struct ChildGuard {
    pub(crate) name: String,
    child: Child,
}

impl ChildGuard {
    /// Spawns `program` with `args`, stdout and stderr appended to `log`.
    /// Under `setpriv --pdeathsig SIGKILL` where available, so the kernel
    /// kills it if the spawning thread dies without running destructors.
    pub(crate) fn spawn(
        name: impl Into<String>,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
        log: &Path,
    ) -> anyhow::Result<Self> {
        let name = name.into();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let err = out.try_clone()?;
        let mut cmd = if which("setpriv") {
            let mut c = Command::new("setpriv");
            c.arg("--pdeathsig").arg("SIGKILL").arg("--").arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.args(args)
            .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {name} ({}): {e}", program.display()))?;
        Ok(Self { name, child })
    }

    /// `Some(status)` if the process has already exited.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub(crate) fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the process and waits until it is gone.
    pub(crate) async fn stop(&mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The last `lines` lines of a log file, for failure messages.
pub(crate) fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A pinned Dapr binary (`make dapr`): `$DAPR_BIN_DIR/<name>` or
/// `~/.dapr/bin/<name>`.
pub(crate) fn dapr_binary(name: &str) -> PathBuf {
    std::env::var_os("DAPR_BIN_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".dapr/bin")))
        .unwrap_or_default()
        .join(name)
}
