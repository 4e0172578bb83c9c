//! A deadline on every request head of every connection, not only the first.
//!
//! actix-http times a connection's first request head (`client_request_timeout`, then 408), and
//! closes a kept-alive connection that stays silent (keep-alive). Between the two there is a
//! gap: once a connection has answered a request, a client that sends part of the next head
//! and stops is never timed out, and holds the connection and a file descriptor for ever; a
//! few hundred such clients exhaust the process's descriptors and every new client is refused.
//!
//! [`Guarded`] wraps each accepted stream and [`ConnectionPhase`] follows its requests:
//! - before the first request, actix-http's own head timer applies;
//! - while a request is served, nothing here applies (the request has its own budget);
//! - once answered, the connection is *between* requests: a byte that arrives starts the next
//!   head's clock, which must be complete within the head timeout, or the stream fails with
//!   `TimedOut` and actix-http closes the connection. Bytes a client pipelined behind the
//!   answered request arrived before the answer: their clock starts at the answer and runs for
//!   keep-alive plus the head timeout;
//! - at shutdown, a connection between requests ends at once (end of stream); one serving a
//!   request finishes it first.
//!
//! A client that trickles a head byte by byte is closed too: the deadline is checked before
//! every read, not only when the socket is idle.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;
use tokio::time::{Instant, Sleep};

/// Where a connection stands between its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No request yet: actix-http's own head timer applies.
    First,
    /// A request is being served.
    Serving,
    /// Answered; a head that starts must be complete by `deadline` at the latest.
    Between { deadline: Instant },
    /// Part of a head has arrived; the rest must by `deadline`.
    Head { deadline: Instant },
}

/// The time limits of one server's connections.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Time for a head, from its first byte.
    pub head: Duration,
    /// Idle time allowed between requests (`None`: one request per connection).
    pub keep_alive: Option<Duration>,
}

/// The phase of one connection, shared by its stream and the requests it carries (one worker
/// thread serves a connection, so a cell suffices).
#[derive(Clone)]
pub(super) struct ConnectionPhase {
    phase: Rc<Cell<Phase>>,
    limits: Limits,
}

impl ConnectionPhase {
    fn new(limits: Limits) -> Self {
        Self {
            phase: Rc::new(Cell::new(Phase::First)),
            limits,
        }
    }

    /// A request's head was read: it is being served.
    pub(super) fn request_started(&self) {
        self.phase.set(Phase::Serving);
    }

    /// The request was answered: the next head has keep-alive plus the head timeout at most.
    pub(super) fn request_finished(&self) {
        let window = self.limits.keep_alive.unwrap_or_default() + self.limits.head;
        self.phase.set(Phase::Between {
            deadline: Instant::now() + window,
        });
    }

    /// Bytes arrived: between requests, they start a head and its clock.
    fn bytes_arrived(&self) {
        if let Phase::Between { deadline } = self.phase.get() {
            let head = Instant::now() + self.limits.head;
            self.phase.set(Phase::Head {
                deadline: deadline.min(head),
            });
        }
    }

    /// The deadline in force, if any.
    fn deadline(&self) -> Option<Instant> {
        match self.phase.get() {
            Phase::Between { deadline } | Phase::Head { deadline } => Some(deadline),
            Phase::First | Phase::Serving => None,
        }
    }

    /// Whether no request is in flight (a stop may end the connection now).
    fn idle(&self) -> bool {
        self.phase.get() != Phase::Serving
    }
}

/// The stop of one server, seen by all its connections.
#[derive(Default)]
pub(super) struct Stopping {
    stopped: AtomicBool,
    notify: Arc<Notify>,
}

impl Stopping {
    /// Every connection between requests ends now; the others once answered.
    pub(super) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

/// An accepted stream under [`ConnectionPhase`]'s deadlines.
pub(super) struct Guarded<T> {
    io: T,
    phase: ConnectionPhase,
    timer: Option<(Pin<Box<Sleep>>, Instant)>,
    stopping: Arc<Stopping>,
    stop_signal: Option<Pin<Box<OwnedNotified>>>,
}

impl<T> Guarded<T> {
    /// Wraps `io`, accepted by a server with `limits`, that stops with `stopping`.
    pub(super) fn new(io: T, limits: Limits, stopping: Arc<Stopping>) -> Self {
        let stop_signal = Some(Box::pin(stopping.notify.clone().notified_owned()));
        Self {
            io,
            phase: ConnectionPhase::new(limits),
            timer: None,
            stopping,
            stop_signal,
        }
    }

    /// The phase its requests report to.
    pub(super) fn phase(&self) -> ConnectionPhase {
        self.phase.clone()
    }

    /// Whether the deadline in force has passed; arms the timer to wake the reader at it.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.phase.deadline() else {
            return false;
        };
        if Instant::now() >= deadline {
            return true;
        }
        let timer = match &mut self.timer {
            Some((timer, armed)) if *armed == deadline => timer,
            slot => {
                let timer = match slot.take() {
                    Some((mut timer, _)) => {
                        timer.as_mut().reset(deadline);
                        timer
                    }
                    None => Box::pin(tokio::time::sleep_until(deadline)),
                };
                &mut slot.insert((timer, deadline)).0
            }
        };
        timer.as_mut().poll(cx).is_ready()
    }

    /// Whether the server stops and no request is in flight; registers for the stop otherwise.
    fn stopped_while_idle(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(signal) = &mut self.stop_signal
            && signal.as_mut().poll(cx).is_ready()
        {
            self.stop_signal = None;
        }
        self.stopping.stopped.load(Ordering::SeqCst) && self.phase.idle()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.stopped_while_idle(cx) {
            // End of stream: actix-http closes the connection as a client's close.
            return Poll::Ready(Ok(()));
        }
        if this.expired(cx) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request head not complete within the head timeout",
            )));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.phase.bytes_arrived();
        }
        read
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
