//! `heist attack …`: one subcommand per attack.

pub mod membership;

use super::exit::CliResult;

/// Attack the encrypted inference service.
#[derive(Debug, clap::Args)]
pub struct AttackArgs {
    #[command(subcommand)]
    command: AttackCommand,
}

/// The attacks `heist attack` runs.
#[derive(Debug, clap::Subcommand)]
pub enum AttackCommand {
    /// Membership inference by a semi-honest insider (paper Tables 6-7), LiRA and the loss
    /// attack.
    Membership(membership::MembershipArgs),
}

/// Runs `heist attack <attack>`.
///
/// # Errors
/// As the chosen attack.
pub fn run(args: AttackArgs) -> CliResult {
    match args.command {
        AttackCommand::Membership(args) => membership::run(args),
    }
}
