// placeholder until the emulator branch lands
#[derive(Default)]
pub struct Settings {
    pub state_dir: Option<std::path::PathBuf>,
}
impl Settings {
    pub fn from_env() -> Result<Self, std::io::Error> {
        Ok(Self::default())
    }
}
pub struct RunningEmulator;
impl RunningEmulator {
    pub fn url(&self) -> String {
        String::new()
    }
    pub async fn shutdown(self) {}
    pub async fn serve_forever(self) -> Result<(), std::io::Error> {
        Ok(())
    }
}
pub async fn start(_: Settings, _: u16) -> Result<RunningEmulator, std::io::Error> {
    Ok(RunningEmulator)
}
