//! `traguardo user create|list|delete` and `traguardo bench-web`: the command
//! line of the web application.

use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use traguardo_events::model::Role;
use traguardo_events::Clock;

use super::accounts::NewUser;
use crate::commands::Principal;
use crate::App;

/// Web account commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a web account; the password is read from standard input.
    Create {
        /// Username (the account's `actor_id`).
        #[arg(long)]
        username: String,
        /// admin, manager, validator or auditor.
        #[arg(long)]
        role: Role,
        /// The name written on the events the account causes.
        #[arg(long)]
        actor: String,
        /// For managers: their units, comma-separated (2250,2252).
        #[arg(long, value_delimiter = ',')]
        units: Vec<String>,
        /// Read the password from standard input (its first line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List the web accounts.
    List,
    /// Delete a web account.
    Delete {
        /// Username.
        username: String,
    },
}

/// Runs a `user` command.
///
/// # Errors
/// When the database cannot be opened or the command is refused.
pub fn run(db: &Path, command: UserCommand) -> anyhow::Result<ExitCode> {
    let app = App::open(db, Clock::system())?;
    let admin = Principal::new("traguardo-cli", Role::Admin, Vec::new());
    let runtime = crate::cli::runtime()?;
    match command {
        UserCommand::Create {
            username,
            role,
            actor,
            units,
            password_stdin: _,
        } => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            let password = text.lines().next().unwrap_or_default().to_string();
            let created = runtime.block_on(app.create_user(
                NewUser {
                    username,
                    password,
                    actor,
                    role,
                    units,
                },
                &admin,
            ));
            match created {
                Ok(user) => {
                    println!(
                        "account {} created ({}, {})",
                        user.username, user.actor, user.role
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(crate::AppError::Invalid(errors)) => {
                    for e in errors {
                        eprintln!("{e}");
                    }
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e.into()),
            }
        }
        UserCommand::List => {
            app.read(|r| {
                for u in r.users() {
                    println!(
                        "{}\t{}\t{}\t{}",
                        u.username,
                        u.role,
                        u.actor,
                        u.units.join(",")
                    );
                }
            });
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::Delete { username } => {
            runtime.block_on(app.delete_user(&username, &admin))?;
            println!("account {username} deleted");
            Ok(ExitCode::SUCCESS)
        }
    }
}
