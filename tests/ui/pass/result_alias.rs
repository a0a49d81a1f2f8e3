use docket::Task;

mod app {
    pub type Result<T> = std::result::Result<T, String>;
}

#[docket::task]
async fn load() -> app::Result<Vec<u8>> {
    Ok(vec![1])
}

#[docket::task]
async fn with_anyhow() -> anyhow::Result<u8> {
    Ok(1)
}

fn main() {
    let _: <Load as Task>::Output = vec![1u8];
    let _: <WithAnyhow as Task>::Output = 1u8;
}
