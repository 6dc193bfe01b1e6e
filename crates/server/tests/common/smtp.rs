//! Python's aiosmtpd as a real SMTP server for tests (`scripts/install-test-tools.sh`
//! installs it, as `.ci/run` does).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Python's aiosmtpd on a free port, writing each message into a Maildir.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = tempfile::tempdir().unwrap();
        let child = Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            // A path that does not exist yet: Maildir creates it with its subfolders.
            .arg(maildir.path().join("maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut server = SmtpServer {
            child,
            port,
            maildir,
        };
        let give_up = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(_)) = server.child.try_wait() {
                let mut stderr = String::new();
                for line in BufReader::new(server.child.stderr.take().unwrap())
                    .lines()
                    .map_while(Result::ok)
                {
                    stderr.push_str(&line);
                    stderr.push('\n');
                }
                panic!(
                    "aiosmtpd did not start (install it with scripts/install-test-tools.sh, as .ci/run does):\n{stderr}"
                );
            }
            assert!(
                Instant::now() < give_up,
                "aiosmtpd did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn messages(&self) -> Vec<String> {
        let new = self.maildir.path().join("maildir").join("new");
        std::fs::read_dir(new)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| std::fs::read_to_string(entry.path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
