//! A call's handle knows the type its task returns: `result()` needs no annotation.

use docket::{Docket, Execution, Worker};

#[docket::task]
async fn double(n: i64) -> i64 {
    n * 2
}

#[docket::task]
async fn greet(name: String) -> anyhow::Result<String> {
    Ok(format!("hello {name}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> docket::Result<()> {
    let docket = Docket::connect("ui-typed", "memory://ui-typed").await?;
    let doubled: Execution<i64> = docket.add(Double::new(21)).await?;
    let greeted = docket.add(Greet::new("ada".into())).await?;
    Worker::builder(docket.clone())
        .build()?
        .run_until_finished()
        .await?;
    assert_eq!(doubled.result().await? + 1, 43);
    assert_eq!(greeted.result().await?.len(), 9);

    // By key, the type is not known: JSON, or named.
    let found = docket.get_execution(doubled.key()).await?.unwrap();
    assert_eq!(found.result().await?, serde_json::json!(42));
    assert_eq!(found.typed::<i64>().result().await?, 42);
    Ok(())
}
