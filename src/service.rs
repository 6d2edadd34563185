//! The service manager's side (systemd `Type=notify`, through the `sd-notify` crate): READY=1
//! once the queue is open and the listener bound, WATCHDOG=1 every half of `WATCHDOG_USEC`
//! while the queue and the poster each answer a round trip (a wedged gateway stops
//! answering and systemd restarts it; a busy one still answers), and STOPPING=1 when it
//! stops. Without `NOTIFY_SOCKET` (not under systemd) nothing is sent.

use actix::prelude::*;
use filmgate_actors::messages::Ping;
use sd_notify::NotifyState;

fn notify(state: NotifyState<'_>) {
    if let Err(e) = sd_notify::notify(&[state]) {
        log::warn!("cannot notify the service manager: {e}");
    }
}

/// The gateway is ready: queue open, listener bound.
pub fn ready() {
    notify(NotifyState::Ready);
}

/// The gateway is stopping.
pub fn stopping() {
    notify(NotifyState::Stopping);
}

/// When the service manager asks for a watchdog (`WATCHDOG_USEC`), spawns the task that
/// pings `queue` and `poster` every half of it and tells the manager each time both answered
/// within that half. Must run inside an actix system.
pub fn spawn_watchdog(queue: Recipient<Ping>, poster: Recipient<Ping>) {
    let Some(timeout) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = timeout / 2;
    log::info!(
        "service manager watchdog: {} s; telling it every {} ms while the queue and the poster answer",
        timeout.as_secs(),
        every.as_millis()
    );
    actix_rt::spawn(async move {
        let mut silent_since: Option<std::time::Instant> = None;
        loop {
            let started = tokio::time::Instant::now();
            let round_trip =
                async { queue.send(Ping).await.is_ok() && poster.send(Ping).await.is_ok() };
            let answered = matches!(tokio::time::timeout(every, round_trip).await, Ok(true));
            if answered {
                notify(NotifyState::Watchdog);
                if let Some(since) = silent_since.take() {
                    log::info!(
                        "watchdog: the queue and the poster answer again (after {:.1} s)",
                        since.elapsed().as_secs_f64()
                    );
                }
            } else if silent_since.is_none() {
                silent_since = Some(std::time::Instant::now());
                log::error!(
                    "watchdog: the queue or the poster did not answer within {} ms; the service \
                     manager restarts filmgate if this lasts",
                    every.as_millis()
                );
            }
            tokio::time::sleep_until(started + every).await;
        }
    });
}
