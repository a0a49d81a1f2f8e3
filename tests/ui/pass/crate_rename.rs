extern crate docket as dk;

#[dk::task(crate = dk)]
async fn renamed_path(n: u32) -> u32 {
    n
}

#[dk::task(crate = "dk")]
async fn renamed_string(n: u32) -> u32 {
    n
}

fn main() {
    assert_eq!(<RenamedPath as dk::Task>::NAME, "renamed_path");
    let _ = RenamedString::new(1);
}
