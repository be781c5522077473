//! Stored bytes the Vault did not write (a damaged or altered data
//! directory): opening them must fail cleanly, never panic, and never
//! return plaintext for a sealed value. And what the Vault seals opens to
//! the same bytes, under the same record only.
#![no_main]

use std::sync::{Arc, LazyLock};

use drawbridge::crypto::cipher::{sealed_key_id, Codec, DataKey, Keyring, KEY_LEN};
use drawbridge::actors::vault::{UpstreamTokens, UserCredentials, UserRef, VaultCore};
use drawbridge::storage::{keys, MemoryStore, Owned, SharedStore, Tree};
use libfuzzer_sys::fuzz_target;

const KEY_ID: &str = "fuzz-key";
const KIND: &str = "upstream_client";
const ID: &str = "mcp_fuzz";
const SUB: &str = "108234567890";

/// A fixed key, so a crash found here replays.
static RING: LazyLock<Keyring> = LazyLock::new(|| {
    let key = DataKey {
        id: KEY_ID.into(),
        bytes: [7; KEY_LEN],
        created_at: 0,
    };
    Keyring::new(vec![key], KEY_ID, [9; KEY_LEN]).expect("current key is in the ring")
});

fuzz_target!(|data: &[u8]| {
    hostile_bytes_never_open(data);
    for codec in [Codec::Sealed(RING.clone()), Codec::Plain] {
        hostile_records_fail_cleanly(codec.clone(), data);
        sealed_secrets_round_trip(codec.clone(), data);
        stored_users_round_trip(codec, data);
    }
    a_changed_byte_never_opens(data);
});

fn hostile_bytes_never_open(data: &[u8]) {
    assert!(
        RING.open("user", b"k", data).is_err(),
        "forged bytes opened"
    );
    let _ = sealed_key_id(data);
}

/// Bytes planted where a secret and a user record belong, read back through
/// the Vault's own API.
fn hostile_records_fail_cleanly(codec: Codec, data: &[u8]) {
    let store: SharedStore = Arc::new(MemoryStore::new());
    let user_key = codec.identity_key("sub", SUB);
    let sealed = codec.is_encrypted();
    let core = VaultCore::new(Owned::new(store.clone()), codec, None, false, None);
    store
        .insert(Tree::Secrets, &keys::secret(KIND, ID), data.to_vec())
        .expect("memory store");
    store
        .insert(Tree::Users, user_key.as_bytes(), data.to_vec())
        .expect("memory store");
    // Only a value in the unsealed format reads without the key.
    let unsealed_marker = Codec::Plain.wrap("", b"", b"");
    match core.open_secret(KIND, ID) {
        Ok(Some(plain)) => assert_eq!(Some(&plain[..]), data.strip_prefix(&unsealed_marker[..])),
        Ok(None) => panic!("the planted secret vanished"),
        Err(_) => {}
    }
    if let Ok(Some(user)) = core.load_user(&UserRef::Subject {
        issuer: String::new(),
        sub: SUB.into(),
    }) {
        assert!(
            data.starts_with(&unsealed_marker),
            "{user:?} from sealed bytes"
        );
    }
    let page = core
        .list_users(None, 10)
        .expect("listing reports, never fails");
    assert_eq!(page.users.len() + page.unreadable.len(), 1);
    if sealed && !data.starts_with(&unsealed_marker) {
        assert_eq!(page.unreadable.len(), 1);
    }
}

fn sealed_secrets_round_trip(codec: Codec, data: &[u8]) {
    let store: SharedStore = Arc::new(MemoryStore::new());
    let mut core = VaultCore::new(Owned::new(store), codec, None, false, None);
    core.seal_secret(KIND, ID, data).expect("memory store");
    assert_eq!(
        core.open_secret(KIND, ID).expect("opens").as_deref(),
        Some(data)
    );
}

fn stored_users_round_trip(codec: Codec, data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let creds = UserCredentials {
        uid: String::new(),
        issuer: "https://accounts.google.com".into(),
        sub: SUB.into(),
        email: Some(format!("{}@example.com", text.len())),
        email_verified: data.len() % 2 == 0,
        tokens: UpstreamTokens {
            access_token: text.clone(),
            refresh_token: Some(text.chars().rev().collect()),
            expires_at: data.first().map(|b| i64::from(*b) - 128),
            scopes: text.split(' ').map(str::to_owned).collect(),
            id_token: None,
        },
        created_at: 1,
        updated_at: 2,
    };
    let store: SharedStore = Arc::new(MemoryStore::new());
    let mut core = VaultCore::new(Owned::new(store), codec, None, false, None);
    let uid = core.store_user(creds.clone()).expect("stores");
    let back = core
        .load_user(&UserRef::Id(uid.clone()))
        .expect("opens")
        .expect("found by id");
    assert_eq!(back, UserCredentials { uid, ..creds });
}

/// Sealing `data`, then changing one byte (chosen by the input), never opens.
fn a_changed_byte_never_opens(data: &[u8]) {
    let record = data.get(..8).unwrap_or(data);
    let sealed = RING.seal("secret", record, data);
    assert_eq!(sealed_key_id(&sealed), Ok(KEY_ID));
    assert_eq!(RING.open("secret", record, &sealed).as_deref(), Ok(data));
    assert!(RING.open("user", record, &sealed).is_err(), "another kind");
    assert!(RING.open("secret", b"other", &sealed).is_err() || record == b"other");
    let (Some(first), Some(last)) = (data.first(), data.last()) else {
        return;
    };
    let mut altered = sealed.clone();
    let at = (usize::from(*first) * 257 + data.len()) % altered.len();
    altered[at] ^= *last | 1;
    assert!(
        RING.open("secret", record, &altered).is_err(),
        "byte {at} changed and it still opened"
    );
}
