//! A Redis server per test: pub/sub streams and state cannot leak between
//! tests, and there is nothing to clean up afterwards.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::process::{ChildGuard, tail};
use crate::{eventually, free_port};

#[derive(Debug)]
pub struct TestRedis {
    port: u16,
    log: PathBuf,
    process: ChildGuard,
}

impl TestRedis {
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let log = dir.join("redis.log");
        let args: Vec<String> = [
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.display().to_string(),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        let process =
            ChildGuard::spawn("redis-server", Path::new("redis-server"), &args, &[], &log)?;
        let redis = Self { port, log, process };
        eventually(Duration::from_secs(10), "redis to answer PING", || async {
            redis
                .command(&["PING"])
                .await
                .ok()
                .filter(|r| r.contains("PONG"))
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&redis.log, 20)))?;
        Ok(redis)
    }

    /// Stops the server (to test what happens without it).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.process.stop().await
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    /// `host:port`, as the components' `REDIS_HOST` expects.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends one command (RESP) and returns the raw reply text.
    pub async fn command(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).await?;
        // Read the first chunk, then whatever follows without a pause: long
        // replies (XRANGE, KEYS) arrive in several segments.
        let mut reply = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await??;
        reply.extend_from_slice(&buf[..n]);
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }

    /// Sends many commands in one write (pipelining) and waits for all the
    /// replies; each reply must be a single line or a bulk string.
    pub async fn pipeline(&self, commands: &[Vec<String>]) -> anyhow::Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let mut request = Vec::new();
        for args in commands {
            request.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for arg in args {
                request.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
            }
        }
        let (mut reader, mut writer) = stream.split();
        let write = async {
            writer.write_all(&request).await?;
            Ok::<_, std::io::Error>(())
        };
        let read = async {
            let mut replies = 0;
            let mut buf = vec![0u8; 64 * 1024];
            let mut pending_bulk = false;
            let mut carry = Vec::new();
            while replies < commands.len() {
                let n =
                    tokio::time::timeout(Duration::from_secs(30), reader.read(&mut buf)).await??;
                anyhow::ensure!(n > 0, "redis closed the connection");
                carry.extend_from_slice(&buf[..n]);
                while let Some(end) = carry.windows(2).position(|w| w == b"\r\n") {
                    let line: Vec<u8> = carry.drain(..end + 2).collect();
                    if pending_bulk {
                        pending_bulk = false;
                        replies += 1;
                    } else if line.first() == Some(&b'$') {
                        pending_bulk = true;
                    } else if line.first() == Some(&b'-') {
                        anyhow::bail!("redis error: {}", String::from_utf8_lossy(&line));
                    } else {
                        replies += 1;
                    }
                }
            }
            Ok::<_, anyhow::Error>(())
        };
        let (written, read) = tokio::join!(write, read);
        written?;
        read
    }

    /// Appends `events` (CloudEvents, as JSON text) to `stream` in one
    /// write, as a publisher's sidecar would: each entry holds its event in
    /// the field `data`, where Dapr's Redis Streams pub/sub reads it.
    pub async fn append_events(
        &self,
        stream: &str,
        events: impl IntoIterator<Item = String>,
    ) -> anyhow::Result<()> {
        let commands: Vec<Vec<String>> = events
            .into_iter()
            .map(|event| {
                vec![
                    "XADD".into(),
                    stream.into(),
                    "*".into(),
                    "data".into(),
                    event,
                ]
            })
            .collect();
        self.pipeline(&commands).await
    }

    /// Number of entries in a stream (a pub/sub topic).
    pub async fn stream_len(&self, stream: &str) -> anyhow::Result<u64> {
        let reply = self.command(&["XLEN", stream]).await?;
        reply
            .trim()
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("unexpected XLEN reply {reply:?}"))
    }
}
