//! A [`Sink`] that publishes every event to a NATS JetStream subject and
//! counts a batch written only once the stream has acknowledged all of it
//! (feature `nats`).
//!
//! Each event becomes one JetStream message on the subject, its payload made
//! by your encoder. A [`write`](Sink::write) publishes the whole batch back to
//! back (pipelined: it does not wait for one ack before sending the next
//! message), then awaits every acknowledgement, and returns `Ok` only when
//! all of them arrived before the call's deadline. Anything else is an error,
//! and the dispatcher retries the whole batch as its
//! [`Retry`](crate::sink::Retry) says.
//!
//! # Duplicates
//!
//! A retried batch is published again, so messages that were stored before
//! the failure are stored twice, unless the stream drops them: give every
//! event a unique id with [`NatsSink::with_msg_id`]. It is sent as the
//! `Nats-Msg-Id` header, and the stream discards a message whose id it has
//! seen within its duplicate window (`duplicate_window`, 2 minutes by
//! default; [`NatsSink::ensure_stream`] sets it). Keep retries (all attempts
//! and backoffs) within that window. Without ids, delivery is at least once.
//!
//! # Runtime
//!
//! The sink owns a small tokio runtime (one worker thread, which keeps the
//! connection alive between writes) and blocks on it inside `write`, so it
//! works with any number of [`flush_workers`](crate::Builder::flush_workers).
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use dispatcher::Dispatcher;
//! use dispatcher::sink::nats::NatsSink;
//!
//! let sink = NatsSink::connect("nats://127.0.0.1:4222", "app.events", |event: &Vec<u8>| {
//!     bytes::Bytes::copy_from_slice(event)
//! })?;
//! sink.ensure_stream("APP", Duration::from_secs(120))?; // create the stream if missing
//! let dispatcher = Dispatcher::<Vec<u8>>::builder()
//!     .flush_workers(2)
//!     .build_with_sink(sink)?;
//! dispatcher.producer().try_enqueue(b"{\"event\":\"click\"}".to_vec())?;
//! dispatcher.shutdown(Duration::from_secs(5))?; // every event acknowledged, or handed back
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::Duration;

use async_nats::jetstream::context::{CreateStreamError, PublishError};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;

use crate::batch::Batch;
use crate::sink::{FlushContext, Sink, SinkError};

/// How long connecting may take.
/// How long connecting (TCP, the NATS handshake) and creating the stream
/// may each take in all: a server that accepts the connection and then says
/// nothing must not hang the caller.
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages published before their acks are awaited, at most: bounds what
/// one write holds in flight however large its batch.
const ACK_WINDOW: usize = 1024;

/// Acknowledgements the connection tracks at once, over every flush worker:
/// room for 64 workers each with a full window. Past it a publish fails
/// (and the batch is retried) rather than waiting.
const MAX_ACKS_IN_FLIGHT: usize = 64 * ACK_WINDOW;

/// Turns an event into a message payload.
type Encoder<T> = Box<dyn Fn(&T) -> Bytes + Send + Sync>;

/// Gives an event its `Nats-Msg-Id`.
type MsgId<T> = Box<dyn Fn(&T) -> String + Send + Sync>;

/// Why a [`NatsSink`] could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsSinkError {
    /// A set-up step got no answer in time: a server that accepts the
    /// connection but does not speak NATS, or one that hangs.
    #[error("{step} `{target}` got no answer within {after:?}")]
    TimedOut {
        /// What was being done.
        step: &'static str,
        /// The server's URL, or the stream's name.
        target: String,
        /// How long it was given.
        after: Duration,
    },
    /// The subject is not one concrete subject.
    #[error(
        "subject `{0}` is not valid: one concrete subject, no spaces and no `*` or `>` wildcards"
    )]
    Subject(String),
    /// The sink's runtime could not start.
    #[error("cannot start the NATS sink's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The server could not be reached.
    #[error("cannot connect to NATS at `{url}`: {source}")]
    Connect {
        /// The URL given.
        url: String,
        /// What the client said.
        #[source]
        source: async_nats::ConnectError,
    },
    /// The stream could not be read or created (JetStream off, a name
    /// clash, subjects that overlap another stream's...).
    #[error("JetStream stream `{stream}` cannot be read or created: {source}")]
    Stream {
        /// The stream name given.
        stream: String,
        /// What the server said.
        #[source]
        source: CreateStreamError,
    },
}

/// Why one [`write`](Sink::write) failed; the dispatcher retries the batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsWriteError {
    /// A message could not be sent.
    #[error("cannot publish event {index} of {len} to `{subject}`: {source}")]
    Publish {
        /// The subject.
        subject: String,
        /// The event's position in the batch.
        index: usize,
        /// The batch's length.
        len: usize,
        /// What the client said.
        #[source]
        source: PublishError,
    },
    /// The stream did not acknowledge a message (no stream for the subject,
    /// a timeout, a lost connection).
    #[error("no acknowledgement for event {index} of {len} on `{subject}`: {source}")]
    Ack {
        /// The subject.
        subject: String,
        /// The event's position in the batch.
        index: usize,
        /// The batch's length.
        len: usize,
        /// What the client said.
        #[source]
        source: PublishError,
    },
    /// The call's deadline passed before every ack arrived.
    #[error("the batch of {len} was not fully acknowledged on `{subject}` before the deadline")]
    Deadline {
        /// The subject.
        subject: String,
        /// The batch's length.
        len: usize,
    },
}

/// Publishes every event of a batch to a JetStream subject and returns once
/// all are acknowledged. See the [module documentation](self).
pub struct NatsSink<T> {
    runtime: tokio::runtime::Runtime,
    jetstream: jetstream::Context,
    subject: async_nats::Subject,
    encode: Encoder<T>,
    msg_id: Option<MsgId<T>>,
}

impl<T> fmt::Debug for NatsSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSink")
            .field("subject", &self.subject.as_str())
            .field("msg_id", &self.msg_id.is_some())
            .finish_non_exhaustive()
    }
}

fn valid_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.split('.').all(|token| {
            !token.is_empty()
                && token != "*"
                && token != ">"
                && !token.contains(char::is_whitespace)
        })
}

impl<T> NatsSink<T> {
    /// Connects to the NATS server at `url` (e.g. `nats://127.0.0.1:4222`)
    /// to publish to `subject`, each event's payload made by `encode`.
    ///
    /// # Errors
    ///
    /// [`NatsSinkError::Subject`] for an empty or wildcard subject,
    /// [`NatsSinkError::Connect`] if the server cannot be reached within
    /// 5 s, [`NatsSinkError::Runtime`] if the runtime cannot start.
    ///
    /// Connecting, the handshake included, is bounded by a few seconds
    /// ([`NatsSinkError::TimedOut`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use dispatcher::sink::nats::{NatsSink, NatsSinkError};
    ///
    /// let err = NatsSink::connect("nats://127.0.0.1:4222", "events.>", |e: &String| {
    ///     bytes::Bytes::from(e.clone())
    /// })
    /// .unwrap_err();
    /// assert!(matches!(err, NatsSinkError::Subject(_)));
    /// ```
    pub fn connect(
        url: &str,
        subject: &str,
        encode: impl Fn(&T) -> Bytes + Send + Sync + 'static,
    ) -> Result<Self, NatsSinkError> {
        if !valid_subject(subject) {
            return Err(NatsSinkError::Subject(subject.to_owned()));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("nats-sink")
            .enable_all()
            .build()
            .map_err(NatsSinkError::Runtime)?;
        let connecting = async_nats::ConnectOptions::new()
            .connection_timeout(SETUP_TIMEOUT)
            .connect(url);
        let client = runtime
            .block_on(async { tokio::time::timeout(SETUP_TIMEOUT, connecting).await })
            .map_err(|_| NatsSinkError::TimedOut {
                step: "connecting to",
                target: url.to_owned(),
                after: SETUP_TIMEOUT,
            })?
            .map_err(|source| NatsSinkError::Connect {
                url: url.to_owned(),
                source,
            })?;
        // The context spawns its ack handler on the runtime it is built in.
        let jetstream = {
            let _runtime = runtime.enter();
            jetstream::ContextBuilder::new()
                .max_ack_inflight(MAX_ACKS_IN_FLIGHT)
                .backpressure_on_inflight(false)
                .build(client)
        };
        Ok(NatsSink {
            runtime,
            jetstream,
            subject: async_nats::Subject::from(subject),
            encode: Box::new(encode),
            msg_id: None,
        })
    }

    /// Sends `id(event)` as each message's `Nats-Msg-Id`, so the stream
    /// drops the copies a retry publishes (within its duplicate window).
    /// Ids must be unique per event.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use dispatcher::sink::nats::NatsSink;
    ///
    /// let sink = NatsSink::connect("nats://127.0.0.1:4222", "orders", |o: &(u64, String)| {
    ///     bytes::Bytes::from(o.1.clone())
    /// })?
    /// .with_msg_id(|o| format!("order-{}", o.0));
    /// # Ok::<(), dispatcher::sink::nats::NatsSinkError>(())
    /// ```
    #[must_use]
    pub fn with_msg_id(mut self, id: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        self.msg_id = Some(Box::new(id));
        self
    }

    /// The subject messages go to.
    pub fn subject(&self) -> &str {
        self.subject.as_str()
    }

    /// Creates the JetStream stream `name` capturing the subject (file
    /// storage, one replica, duplicates dropped within `duplicate_window`)
    /// unless a stream of that name exists, which is then used as it is.
    ///
    /// # Errors
    ///
    /// [`NatsSinkError::Stream`] if the server refuses (JetStream off, an
    /// invalid name, subjects overlapping another stream).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use dispatcher::sink::nats::NatsSink;
    ///
    /// let sink = NatsSink::connect("nats://127.0.0.1:4222", "app.events", |e: &Vec<u8>| {
    ///     bytes::Bytes::copy_from_slice(e)
    /// })?;
    /// sink.ensure_stream("APP", Duration::from_secs(120))?;
    /// # Ok::<(), dispatcher::sink::nats::NatsSinkError>(())
    /// ```
    pub fn ensure_stream(
        &self,
        name: &str,
        duplicate_window: Duration,
    ) -> Result<(), NatsSinkError> {
        let config = stream::Config {
            name: name.to_owned(),
            subjects: vec![self.subject.to_string()],
            duplicate_window,
            ..stream::Config::default()
        };
        let creating = self.jetstream.get_or_create_stream(config);
        self.runtime
            .block_on(async { tokio::time::timeout(SETUP_TIMEOUT, creating).await })
            .map_err(|_| NatsSinkError::TimedOut {
                step: "creating the stream",
                target: name.to_owned(),
                after: SETUP_TIMEOUT,
            })?
            .map(drop)
            .map_err(|source| NatsSinkError::Stream {
                stream: name.to_owned(),
                source,
            })
    }

    /// Publishes `items` in windows of [`ACK_WINDOW`], awaiting each
    /// window's acks before the next.
    async fn publish(&self, items: &[T]) -> Result<(), NatsWriteError> {
        let len = items.len();
        let subject = || self.subject.to_string();
        let mut acks = Vec::with_capacity(len.min(ACK_WINDOW));
        for (window, chunk) in items.chunks(ACK_WINDOW).enumerate() {
            let first = window * ACK_WINDOW;
            for (offset, item) in chunk.iter().enumerate() {
                let mut message = PublishMessage::build().payload((self.encode)(item));
                if let Some(id) = &self.msg_id {
                    message = message.message_id(id(item));
                }
                let ack = self
                    .jetstream
                    .send_publish(self.subject.clone(), message)
                    .await
                    .map_err(|source| NatsWriteError::Publish {
                        subject: subject(),
                        index: first + offset,
                        len,
                        source,
                    })?;
                acks.push(ack);
            }
            for (offset, ack) in acks.drain(..).enumerate() {
                ack.await.map_err(|source| NatsWriteError::Ack {
                    subject: subject(),
                    index: first + offset,
                    len,
                    source,
                })?;
            }
        }
        Ok(())
    }
}

impl<T: 'static, M> Sink<T, M> for NatsSink<T> {
    fn write(&self, batch: &Batch<T>, ctx: &FlushContext<M>) -> Result<(), SinkError> {
        let deadline = tokio::time::Instant::from_std(ctx.deadline());
        self.runtime
            .block_on(async {
                tokio::time::timeout_at(deadline, self.publish(batch.items())).await
            })
            .map_err(|_elapsed| NatsWriteError::Deadline {
                subject: self.subject.to_string(),
                len: batch.len(),
            })?
            .map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_concrete_subjects_are_valid() {
        for good in ["metronome.events", "a", "a.b-c.d_e"] {
            assert!(valid_subject(good), "{good}");
        }
        for bad in ["", "a.*", "a.>", "a..b", ".a", "a b", "a.b."] {
            assert!(!valid_subject(bad), "{bad}");
        }
    }

    #[test]
    fn a_server_that_is_not_there_is_a_connect_error() {
        // A port nobody listens on: bind one, read it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let url = format!("nats://127.0.0.1:{port}");
        let err = NatsSink::connect(&url, "s", |e: &String| Bytes::from(e.clone())).unwrap_err();
        assert!(
            matches!(&err, NatsSinkError::Connect { url: u, .. } if *u == url),
            "{err}"
        );
        assert!(err.to_string().contains(&url), "{err}");
    }

    /// A listener that accepts and never says a word: the set-up gives up
    /// within its bound instead of hanging.
    #[test]
    fn a_server_that_never_answers_is_given_up_on() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("nats://{}", silent.local_addr().expect("its address"));
        let started = std::time::Instant::now();
        let outcome = NatsSink::connect(&url, "events", |e: &Vec<u8>| Bytes::copy_from_slice(e));
        assert!(
            matches!(
                outcome,
                Err(NatsSinkError::TimedOut { .. } | NatsSinkError::Connect { .. })
            ),
            "{:?}",
            outcome.err()
        );
        assert!(
            started.elapsed() < SETUP_TIMEOUT * 3,
            "{:?}",
            started.elapsed()
        );
        drop(silent);
    }
}
