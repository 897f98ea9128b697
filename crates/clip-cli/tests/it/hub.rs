//! A model downloaded from a loopback hub, then used offline.

use std::process::Command;

use clip_test_support::{fixture, hub_server, temp_dir};

use crate::{run, stderr, stdout, TestContext, OPENAI};

#[test]
fn downloads_from_the_hub_then_works_offline() {
    let context = TestContext::new();
    // Cache and home apart, as with HF_HUB_CACHE on a data disk: the token still comes from
    // $HF_HOME/token, where `huggingface-cli login` writes it.
    let home_dir = temp_dir();
    let home = home_dir.path();
    let cache_dir = temp_dir();
    let cache = cache_dir.path();
    std::fs::write(home.join("token"), "hf_file_token\n").unwrap();
    let server = hub_server::HubServer::start("org/tiny-clip", &fixture("models/tiny-openai"));
    let args = [
        "classify",
        "photos/chelsea.png",
        "-l",
        "cat,dog,car",
        "--model",
        "org/tiny-clip",
    ];
    let env = |cmd: &mut Command| {
        cmd.env("HF_HOME", home).env("HF_HUB_CACHE", cache);
    };
    let mut online_cmd = context.clip(&args);
    env(&mut online_cmd);
    let online = run(online_cmd
        .env("HF_ENDPOINT", server.endpoint())
        .env_remove("HF_HUB_OFFLINE"));
    assert!(online.status.success(), "{}", stderr(&online));
    assert_eq!(
        server.authorization().as_deref(),
        Some("Bearer hf_file_token")
    );
    let snapshot = cache
        .join("models--org--tiny-clip/snapshots")
        .join(hub_server::COMMIT);
    assert!(snapshot.join("model.safetensors").is_file());
    drop(server);
    let mut offline_cmd = context.clip(&args);
    env(&mut offline_cmd);
    let offline = run(&mut offline_cmd);
    assert!(offline.status.success(), "{}", stderr(&offline));
    assert_eq!(stdout(&online), stdout(&offline));
    let direct = context.ok(&[
        "classify",
        "photos/chelsea.png",
        "-l",
        "cat,dog,car",
        "--model",
        OPENAI,
    ]);
    assert_eq!(stdout(&offline), direct);
    let mut listed = context.clip(&["models"]);
    env(&mut listed);
    assert!(stdout(&run(&mut listed)).contains("org/tiny-clip"));
}
