//! The heist host library: everything behind the `heist` command line.

pub mod attack;
pub mod cli;
pub mod data;
pub mod executor;
pub mod figure;
pub mod inference;
pub mod model;
pub mod oracle;
pub mod plot;
pub mod reproduce;
pub mod service;
pub mod train;
