//! stackctl end to end: the built binary against the emulator, as a user or CI would run it.

mod cli;
mod conformance;
mod faults;
mod identity;
mod ownership;
mod support;
