//! The instance state machine: one pure function from (state, event) to the next
//! state or a refusal. The instance actor is its only caller for running
//! instances; the registry uses it for instances that never got a process.

use super::instance::InstanceStatus::{self, Active, AwaitingInput, Completed, Error, Idle, Terminated};

/// Something that happens to an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A slot was granted and the process started.
    Start,
    /// The program waits for the user (detected, or the agent said so).
    Wait,
    /// Output or input: the program works again.
    Resume,
    /// The process exited by itself.
    Exit { code: Option<i32>, signal: Option<i32> },
    /// The agent declared it is done.
    Complete,
    /// It could not start, or the server died under it.
    Fail,
    /// Stopped on request (user, agent deletion, server shutdown).
    Terminate,
}

/// Why an event does not change the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The instance already ended; nothing leads out of a final state.
    Final(InstanceStatus),
    /// The event means nothing in this state (e.g. `Wait` while idle).
    Illegal(InstanceStatus, Event),
    /// The instance is already where the event would take it.
    Unchanged(InstanceStatus),
}

/// Whether no transition leads out of `status`.
#[must_use]
pub fn is_final(status: InstanceStatus) -> bool {
    matches!(status, Completed | Error | Terminated)
}

/// Whether `status` holds one of the running slots.
#[must_use]
pub fn holds_slot(status: InstanceStatus) -> bool {
    matches!(status, Active | AwaitingInput)
}

/// The state after `event`, or why there is none.
///
/// # Errors
/// A [`Refusal`] when the event does not apply.
pub fn next(state: InstanceStatus, event: Event) -> Result<InstanceStatus, Refusal> {
    let to = match (state, event) {
        (Completed | Error | Terminated, _) => return Err(Refusal::Final(state)),
        (_, Event::Terminate) => Terminated,
        (_, Event::Fail) => Error,
        (Idle, Event::Start) => Active,
        (Idle, _) | (Active | AwaitingInput, Event::Start) => return Err(Refusal::Illegal(state, event)),
        (Active, Event::Wait) => AwaitingInput,
        (AwaitingInput, Event::Resume) => Active,
        (Active, Event::Resume) | (AwaitingInput, Event::Wait) => return Err(Refusal::Unchanged(state)),
        (_, Event::Complete) | (_, Event::Exit { code: Some(0), signal: None }) => Completed,
        (_, Event::Exit { .. }) => Error,
    };
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EVENTS: [Event; 8] = [
        Event::Start,
        Event::Wait,
        Event::Resume,
        Event::Exit { code: Some(0), signal: None },
        Event::Exit { code: Some(3), signal: None },
        Event::Complete,
        Event::Fail,
        Event::Terminate,
    ];

    /// The whole table, written out: `None` is a refusal.
    fn expected(state: InstanceStatus, event: Event) -> Option<InstanceStatus> {
        use Event as E;
        let ok = |s| Some(s);
        match state {
            Idle => match event {
                E::Start => ok(Active),
                E::Fail => ok(Error),
                E::Terminate => ok(Terminated),
                _ => None,
            },
            Active | AwaitingInput => match event {
                E::Start => None,
                E::Wait => (state == Active).then_some(AwaitingInput),
                E::Resume => (state == AwaitingInput).then_some(Active),
                E::Exit { code: Some(0), signal: None } | E::Complete => ok(Completed),
                E::Exit { .. } | E::Fail => ok(Error),
                E::Terminate => ok(Terminated),
            },
            Completed | Error | Terminated => None,
        }
    }

    #[test]
    fn every_pair_follows_the_table() {
        for state in InstanceStatus::ALL {
            for event in EVENTS {
                assert_eq!(next(state, event).ok(), expected(state, event), "{state:?} + {event:?}");
            }
        }
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(next(Completed, Event::Start), Err(Refusal::Final(Completed)));
        assert_eq!(next(Idle, Event::Wait), Err(Refusal::Illegal(Idle, Event::Wait)));
        assert_eq!(next(Active, Event::Resume), Err(Refusal::Unchanged(Active)));
        assert_eq!(next(Active, Event::Exit { code: None, signal: Some(9) }), Ok(Error));
    }

    fn any_event() -> impl Strategy<Value = Event> {
        prop_oneof![
            Just(Event::Start),
            Just(Event::Wait),
            Just(Event::Resume),
            Just(Event::Complete),
            Just(Event::Fail),
            Just(Event::Terminate),
            (proptest::option::of(-1i32..300), proptest::option::of(1i32..64))
                .prop_map(|(code, signal)| Event::Exit { code, signal }),
        ]
    }

    proptest! {
        #[test]
        fn any_sequence_keeps_a_legal_state_and_final_states_stay_final(events in proptest::collection::vec(any_event(), 0..40)) {
            let mut state = Idle;
            let mut ended = None;
            for event in events {
                match next(state, event) {
                    Ok(to) => {
                        prop_assert!(ended.is_none(), "left final state {:?}", ended);
                        prop_assert!(to != Idle, "nothing returns to idle");
                        state = to;
                        if is_final(to) { ended = Some(to); }
                    }
                    Err(Refusal::Final(s)) => prop_assert_eq!(Some(s), ended),
                    Err(_) => prop_assert!(ended.is_none()),
                }
            }
        }
    }
}
