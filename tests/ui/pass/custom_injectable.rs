use docket::{Execution, FromExecution};

struct Tenant(String);

impl FromExecution for Tenant {
    type Rejection = String;

    async fn from_execution(execution: &Execution) -> Result<Self, Self::Rejection> {
        Ok(Tenant(execution.key().to_owned()))
    }
}

/// `Progress` here is the user's own data type, passed as data with `#[arg]`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Progress(u8);

#[docket::task]
async fn rebuild(shard: u32, #[inject] tenant: Tenant, #[arg] progress: Progress) -> String {
    format!("{shard} {} {}", tenant.0, progress.0)
}

fn main() {
    let _ = Rebuild::new(3, Progress(1));
}
