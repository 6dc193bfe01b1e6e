//! Capture every log line of this test process, to check what reaches logs.

#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// Install a JSON subscriber at trace level for the whole process (each
    /// test binary under nextest is its own process) writing here.
    pub fn install() -> CapturedLogs {
        let captured = CapturedLogs::default();
        let writer = captured.clone();
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter("trace")
            .with_writer(move || writer.clone())
            .try_init();
        captured
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
