//! [`QueueClient`]: the queue's inspection and control mailboxes, as recipients, so the web
//! frontend depends on the messages rather than on the actor type.

use crate::changes::Changes;
use crate::messages::{
    AcceptItem, AckAlarm, DeleteItem, GetItem, GetSpc, GetSpcLots, GetSpcPoints, GetStats,
    ListAlarms, ListItems, ResetSpc, RetryAllDead, RetryItem,
};
use actix::dev::ToEnvelope;
use actix::prelude::*;

/// The recipients the web side uses to inspect and control the queue.
#[derive(Clone)]
pub struct QueueClient {
    pub list: Recipient<ListItems>,
    pub get: Recipient<GetItem>,
    pub retry: Recipient<RetryItem>,
    pub accept: Recipient<AcceptItem>,
    pub retry_all: Recipient<RetryAllDead>,
    pub delete: Recipient<DeleteItem>,
    pub stats: Recipient<GetStats>,
    /// SPC: charts, points, lots, reset, alarms and their acknowledgement.
    pub spc: Recipient<GetSpc>,
    pub spc_points: Recipient<GetSpcPoints>,
    pub spc_lots: Recipient<GetSpcLots>,
    pub spc_reset: Recipient<ResetSpc>,
    pub alarms: Recipient<ListAlarms>,
    pub ack_alarm: Recipient<AckAlarm>,
    /// Signalled when what these answer may have changed ([`crate::queue::QueueStore::change_signal`]).
    pub changes: Changes,
}

impl QueueClient {
    /// Recipients of one actor that handles every inspection message, and its store's
    /// change signal.
    pub fn new<A>(addr: &Addr<A>, changes: Changes) -> Self
    where
        A: Actor
            + Handler<ListItems>
            + Handler<GetItem>
            + Handler<RetryItem>
            + Handler<AcceptItem>
            + Handler<RetryAllDead>
            + Handler<DeleteItem>
            + Handler<GetStats>
            + Handler<GetSpc>
            + Handler<GetSpcPoints>
            + Handler<GetSpcLots>
            + Handler<ResetSpc>
            + Handler<ListAlarms>
            + Handler<AckAlarm>,
        A::Context: ToEnvelope<A, ListItems>
            + ToEnvelope<A, GetItem>
            + ToEnvelope<A, RetryItem>
            + ToEnvelope<A, AcceptItem>
            + ToEnvelope<A, RetryAllDead>
            + ToEnvelope<A, DeleteItem>
            + ToEnvelope<A, GetStats>
            + ToEnvelope<A, GetSpc>
            + ToEnvelope<A, GetSpcPoints>
            + ToEnvelope<A, GetSpcLots>
            + ToEnvelope<A, ResetSpc>
            + ToEnvelope<A, ListAlarms>
            + ToEnvelope<A, AckAlarm>,
    {
        QueueClient {
            list: addr.clone().recipient(),
            get: addr.clone().recipient(),
            retry: addr.clone().recipient(),
            accept: addr.clone().recipient(),
            retry_all: addr.clone().recipient(),
            delete: addr.clone().recipient(),
            stats: addr.clone().recipient(),
            spc: addr.clone().recipient(),
            spc_points: addr.clone().recipient(),
            spc_lots: addr.clone().recipient(),
            spc_reset: addr.clone().recipient(),
            alarms: addr.clone().recipient(),
            ack_alarm: addr.clone().recipient(),
            changes,
        }
    }
}
