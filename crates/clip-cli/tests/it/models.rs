//! `clip models`: known names and the Hugging Face cache.

use clip_test_support::{fixture, temp_dir};

use crate::{run, stdout, TestContext};

#[test]
fn models_lists_known_names_and_the_cache() {
    let context = TestContext::new();
    let home_dir = temp_dir();
    let home = home_dir.path();
    let snap = home.join("hub/models--org--cached-clip/snapshots/abc");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(home.join("hub/models--org--cached-clip/refs")).unwrap();
    std::fs::write(home.join("hub/models--org--cached-clip/refs/main"), "abc").unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("models/tiny-laion").join(f), snap.join(f)).unwrap();
    }
    let o = run(context.clip(&["models"]).env("HF_HOME", home));
    assert!(o.status.success());
    let out = stdout(&o).replace(home.to_str().unwrap(), "$HF_HOME");
    insta::assert_snapshot!(out);
    let o = run(context.clip(&["models", "--json"]).env("HF_HOME", home));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["other_cached"][0]["repo"], "org/cached-clip");
    assert_eq!(v["known"][0]["name"], "ViT-B/32");
}
