//! The engine's log for the tray app: a `tracing` layer that keeps the last
//! [`CAPACITY`] lines in a ring buffer (`get_logs`) and broadcasts each new
//! line (forwarded to the webview as `log-line`). Lines also go to stderr,
//! as with `postern serve`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Lines kept for the Logs page: a few hours of a busy office.
pub const CAPACITY: usize = 2000;
/// Lines a slow `log-line` forwarder may lag before it skips some (the page
/// can re-read the buffer with `get_logs`).
const LIVE_BUFFER: usize = 256;

#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct LogLine {
    pub seq: u64,
    /// Unix milliseconds.
    pub time: u64,
    pub level: String,
    pub message: String,
}

/// The ring buffer; cheap to clone. The lock is held only to push or copy
/// lines, never across an await.
#[derive(Clone)]
pub struct LogBuffer {
    inner: Arc<Mutex<Ring>>,
    live: broadcast::Sender<LogLine>,
}

struct Ring {
    next_seq: u64,
    lines: VecDeque<LogLine>,
}

impl Default for LogBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl LogBuffer {
    pub fn new() -> LogBuffer {
        LogBuffer {
            inner: Arc::new(Mutex::new(Ring {
                next_seq: 1,
                lines: VecDeque::with_capacity(CAPACITY),
            })),
            live: broadcast::channel(LIVE_BUFFER).0,
        }
    }

    pub fn push(&self, time: u64, level: &str, message: String) {
        let line = {
            let mut ring = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            let line = LogLine {
                seq: ring.next_seq,
                time,
                level: level.to_string(),
                message,
            };
            ring.next_seq += 1;
            if ring.lines.len() == CAPACITY {
                ring.lines.pop_front();
            }
            ring.lines.push_back(line.clone());
            line
        };
        let _ = self.live.send(line);
    }

    /// The kept lines with `seq > since`, oldest first.
    pub fn since(&self, since: u64) -> Vec<LogLine> {
        let ring = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        ring.lines
            .iter()
            .filter(|l| l.seq > since)
            .cloned()
            .collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.live.subscribe()
    }
}

/// The `tracing` layer feeding a [`LogBuffer`].
pub struct BufferLayer(pub LogBuffer);

impl<S: Subscriber> Layer<S> for BufferLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut text = TextVisitor::default();
        event.record(&mut text);
        self.0.push(
            postern_engine::spool::now_ms(),
            &event.metadata().level().to_string().to_lowercase(),
            text.finish(),
        );
    }
}

/// "message key=value key=value", like the stderr format.
#[derive(Default)]
struct TextVisitor {
    message: String,
    fields: String,
}

impl TextVisitor {
    fn finish(self) -> String {
        match (self.message.is_empty(), self.fields.is_empty()) {
            (_, true) => self.message,
            (true, false) => self.fields,
            (false, false) => format!("{} {}", self.message, self.fields),
        }
    }
}

impl Visit for TextVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={value:?}", field.name());
        }
    }
}

/// Logging for the tray app: stderr (as `postern serve`) plus the buffer,
/// filtered by `POSTERN_LOG` (default `info`).
pub fn init(buffer: LogBuffer) {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("POSTERN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_target(false),
        )
        .with(BufferLayer(buffer))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::prelude::*;

    #[test]
    fn keeps_the_last_lines_in_order() {
        let buf = LogBuffer::new();
        for i in 0..CAPACITY + 5 {
            buf.push(0, "info", format!("line {i}"));
        }
        let all = buf.since(0);
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].message, "line 5");
        assert_eq!(all.last().unwrap().seq, (CAPACITY + 5) as u64);
        let tail = buf.since(all.last().unwrap().seq - 2);
        assert_eq!(tail.len(), 2);
    }

    #[test]
    fn the_layer_records_message_and_fields() {
        let buf = LogBuffer::new();
        let mut live = buf.subscribe();
        let subscriber = tracing_subscriber::registry().with(BufferLayer(buf.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(pruned = 3, "old records removed");
        });
        let line = live.try_recv().unwrap();
        assert_eq!(line.level, "warn");
        assert_eq!(line.message, "old records removed pruned=3");
        assert_eq!(buf.since(0), vec![line]);
    }
}
