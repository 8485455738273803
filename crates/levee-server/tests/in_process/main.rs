//! The fast tier: levee in the test's process in front of scripted fake
//! upstreams (`support` says why fakes, and where the real peers are).
//! One binary for all of it, so it links once.

mod forward;
mod h2_upstream;
mod run;
mod support;
