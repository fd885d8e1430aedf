//! Cloud Tasks rules (CT1, CT2, CT3): idle queues, queues that retry forever and paused
//! queues with a backlog.

use super::{RuleContext, finding, short, younger_than_window};
use crate::audit::{Finding, Rule, Severity};
use crate::provider::tasks::QueueState;

pub(super) fn idle_queue(context: &RuleContext) -> Vec<Finding> {
    let days = context.window.idle_days;
    context
        .inventory
        .queues
        .iter()
        .filter(|q| q.state == QueueState::Running)
        .filter(|q| {
            let recorded = context.inventory.ledgered.get(&q.name).copied().flatten();
            !younger_than_window(context, recorded)
        })
        .filter(|q| {
            let id = short(&q.name);
            context.signals.queue_attempts.get(id).copied().unwrap_or(0.0) <= 0.0
                && context.signals.queue_depth_max.get(id).copied().unwrap_or(0.0) <= 0.0
        })
        .map(|queue| {
            finding(
                Rule::IdleQueue,
                &queue.name,
                format!("no tasks queued and no attempts in {days} days (queue/depth, queue/task_attempt_count)"),
                Some(0.0),
                Severity::Low,
                format!(
                    "remove [queue.{}] from stack.toml (stackctl pauses it), or delete it if no stack owns it",
                    short(&queue.name)
                ),
            )
        })
        .collect()
}

pub(super) fn queue_retries_forever(context: &RuleContext) -> Vec<Finding> {
    context
        .inventory
        .queues
        .iter()
        .filter(|q| q.max_attempts == -1 && q.max_retry_duration.is_none_or(|d| d.is_zero()))
        .map(|queue| {
            finding(
                Rule::QueueRetriesForever,
                &queue.name,
                "max_attempts = -1 (unlimited) and no max_retry_duration: a failing task is retried until the queue's 31-day retention".into(),
                None,
                Severity::Medium,
                format!(
                    "set max_attempts = 5 (or a max_retry_duration) in [queue.{}]",
                    short(&queue.name)
                ),
            )
        })
        .collect()
}

pub(super) fn paused_queue_with_backlog(context: &RuleContext) -> Vec<Finding> {
    let days = context.window.idle_days;
    context
        .inventory
        .queues
        .iter()
        .filter(|q| q.state == QueueState::Paused)
        .filter_map(|queue| {
            let depth = context
                .signals
                .queue_depth_max
                .get(short(&queue.name))
                .copied()
                .unwrap_or(0.0);
            (depth > 0.0).then(|| {
                finding(
                    Rule::PausedQueueWithBacklog,
                    &queue.name,
                    format!("PAUSED with up to {depth} tasks waiting in {days} days (queue/depth max)"),
                    None,
                    Severity::Medium,
                    format!(
                        "declare [queue.{}] in stack.toml to resume it, or purge it: gcloud tasks queues purge {}",
                        short(&queue.name),
                        short(&queue.name)
                    ),
                )
            })
        })
        .collect()
}
