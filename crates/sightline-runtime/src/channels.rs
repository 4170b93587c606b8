//! How clients reach an agent besides RPC: connections (WebSocket-style) carrying chat
//! messages, each handled as an agent turn, and email. The inputs themselves
//! (`ChannelMsg`) and how an instance handles them are here; the host's public entry
//! points that send them (`Runtime::connect`, `message`, `disconnect`, `email`) are in
//! `host.rs`, beside `Runtime::rpc`.
//!
//! - `Runtime::connect` / `Runtime::disconnect` emit `connect` / `disconnect` and call the
//!   agent's `on_connect` / `on_disconnect`;
//! - `Runtime::message` emits `message:request`, runs the agent's `on_message` as a turn
//!   (`chat:turn:start`, then `chat:turn:finish` with its status and duration, the span the
//!   turn's model and tool calls nest in) and ends with `message:response` or
//!   `message:error`; a message whose client gave up before the agent got to it is
//!   `message:cancel`led, not run;
//! - `Runtime::email` emits `email:receive` and calls `on_email`; [`Ctx::send_email`] and
//!   [`Ctx::reply_email`] emit `email:send` / `email:reply` (delivery itself is the host's
//!   business: the runtime records that the agent sent it).

use std::time::Instant;

use sightline_event::{
    ChatTurnFinish, ChatTurnStart, Connect, Disconnect, EmailReceive, EmailReply, EmailSend,
    MessageCancel, MessageError, MessageRequest, MessageResponse, Name, Outcome, Sensitive,
    TraceContext,
};
use tokio::sync::oneshot;

use crate::agent::{Agent, Ctx};
use crate::ctx_state::{Email, OpenTurn};
use crate::error::RpcError;

/// Closes the turn under way, if any, as aborted (`chat:turn:finish` status `aborted`,
/// `message:error`): the instance is leaving memory in the middle of it.
pub(crate) fn abort_turn(ctx: &mut Ctx, why: &str) {
    let Some(t) = ctx.open_turn.take() else {
        return;
    };
    let took = t.started.elapsed().as_nanos() as u64;
    ctx.emitter.emit_with(|m| {
        m.outcome = Some(Outcome::Cancelled);
        m.duration_ns = Some(took);
        m.trace = Some(t.turn);
        ChatTurnFinish {
            request_id: t.request_id.clone(),
            status: Name::new_static("aborted"),
        }
    });
    ctx.emitter.emit_with(|m| {
        m.outcome = Some(Outcome::Error);
        m.duration_ns = Some(took);
        m.trace = Some(t.span);
        MessageError {
            request_id: t.request_id,
            error: Sensitive(why.to_owned()),
        }
    });
}

/// An input arriving on a connection or by email.
pub(crate) enum ChannelMsg {
    Connect {
        connection: Name,
        reply: oneshot::Sender<Result<(), RpcError>>,
    },
    Message {
        connection: Name,
        request_id: Name,
        text: String,
        trace: Option<TraceContext>,
        reply: oneshot::Sender<Result<String, RpcError>>,
    },
    Disconnect {
        connection: Name,
        code: u16,
        reason: Option<String>,
    },
    Email {
        email: Email,
        reply: oneshot::Sender<Result<(), RpcError>>,
    },
}

impl Ctx {
    /// Records that the agent sent an email (`email:send`; addresses are sensitive).
    pub fn send_email(&self, from: &str, to: &str, subject: &str) {
        self.emitter.emit(|| EmailSend {
            from: Sensitive(from.to_owned()),
            to: Sensitive(to.to_owned()),
            subject: Some(Sensitive(subject.to_owned())),
        });
    }

    /// Records that the agent replied to `email` (`email:reply`, from the address it was
    /// sent to, back to its sender).
    pub fn reply_email(&self, email: &Email, subject: &str) {
        self.emitter.emit(|| EmailReply {
            from: Sensitive(email.to.clone()),
            to: Sensitive(email.from.clone()),
            subject: Some(Sensitive(subject.to_owned())),
        });
    }
}

/// Handles one channel input inside the agent's loop.
pub(crate) async fn handle<A: Agent>(instance: &mut A, ctx: &mut Ctx, msg: ChannelMsg) {
    match msg {
        ChannelMsg::Connect { connection, reply } => {
            ctx.emitter.set_trace(None);
            ctx.emitter.emit(|| Connect {
                connection_id: connection.clone(),
            });
            let r = instance.on_connect(ctx, connection.as_str()).await;
            let _ = reply.send(r);
        }
        ChannelMsg::Disconnect {
            connection,
            code,
            reason,
        } => {
            ctx.emitter.set_trace(None);
            ctx.emitter.emit(|| Disconnect {
                connection_id: connection.clone(),
                code,
                reason: reason.map(Sensitive),
            });
            instance.on_disconnect(ctx, connection.as_str()).await;
        }
        ChannelMsg::Email { email, reply } => {
            ctx.emitter.set_trace(Some(TraceContext::new_root()));
            ctx.emitter.emit(|| EmailReceive {
                from: Sensitive(email.from.clone()),
                to: Sensitive(email.to.clone()),
                subject: Some(Sensitive(email.subject.clone())),
            });
            let r = instance.on_email(ctx, email).await;
            ctx.emitter.set_trace(None);
            let _ = reply.send(r);
        }
        ChannelMsg::Message {
            connection,
            request_id,
            text,
            trace,
            reply,
        } => {
            let span = trace.map_or_else(TraceContext::new_root, |t| t.child());
            ctx.emitter.set_trace(Some(span));
            ctx.emitter.emit(|| MessageRequest {
                request_id: request_id.clone(),
            });
            if reply.is_closed() {
                // The client gave up while the message waited in the mailbox.
                ctx.emitter.emit(|| MessageCancel { request_id });
                ctx.emitter.set_trace(None);
                return;
            }
            let t0 = Instant::now();
            // The turn: its own span, which the agent's model and tool calls nest in.
            let turn = span.child();
            ctx.emitter.set_trace(Some(turn));
            ctx.emitter.emit(|| ChatTurnStart {
                request_id: request_id.clone(),
            });
            ctx.open_turn = Some(OpenTurn {
                request_id: request_id.clone(),
                span,
                turn,
                started: t0,
            });
            let r = instance.on_message(ctx, connection.as_str(), text).await;
            ctx.open_turn = None;
            let took = t0.elapsed().as_nanos() as u64;
            let ok = r.is_ok();
            ctx.emitter.emit_with(|m| {
                m.outcome = Some(if ok { Outcome::Ok } else { Outcome::Error });
                m.duration_ns = Some(took);
                m.trace = Some(turn);
                ChatTurnFinish {
                    request_id: request_id.clone(),
                    status: Name::new_static(if ok { "completed" } else { "error" }),
                }
            });
            let took = t0.elapsed().as_nanos() as u64;
            match &r {
                Ok(_) => ctx.emitter.emit_with(|m| {
                    m.outcome = Some(Outcome::Ok);
                    m.duration_ns = Some(took);
                    m.trace = Some(span);
                    MessageResponse { request_id }
                }),
                Err(e) => ctx.emitter.emit_with(|m| {
                    m.outcome = Some(Outcome::Error);
                    m.duration_ns = Some(took);
                    m.trace = Some(span);
                    MessageError {
                        request_id,
                        error: Sensitive(e.message.clone()),
                    }
                }),
            }
            ctx.emitter.set_trace(None);
            let _ = reply.send(r);
        }
    }
}

/// Fails an input that will never run (the instance could not start, or was evicted).
pub(crate) fn refuse(msg: ChannelMsg, e: &RpcError) {
    match msg {
        ChannelMsg::Connect { reply, .. } | ChannelMsg::Email { reply, .. } => {
            let _ = reply.send(Err(e.clone()));
        }
        ChannelMsg::Message { reply, .. } => {
            let _ = reply.send(Err(e.clone()));
        }
        ChannelMsg::Disconnect { .. } => {}
    }
}
