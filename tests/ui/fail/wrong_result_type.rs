#[docket::task]
async fn double(n: i64) -> i64 {
    n * 2
}

async fn produce(docket: docket::Docket) -> docket::Result<String> {
    let execution = docket.add(Double::new(21)).await?;
    execution.result().await
}

fn main() {
    let _ = produce;
}
