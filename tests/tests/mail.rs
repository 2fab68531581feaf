//! Mailer contract: a message is accepted and gets an id; bad messages are refused.

use madoguchi_ports::{Email, PortError};
use madoguchi_tests::{Env, Kind, contract_tests};

contract_tests!(mail_accepted, bad_mail_refused);

async fn mail_accepted(env: Env) {
    let (mailer, from) = env.mailer().await;
    let email = Email {
        from,
        to: vec![
            "taro.yamada@example.jp".into(),
            "staff@example.lg.jp".into(),
        ],
        subject: "【受付完了】転入届のオンライン申請を受け付けました".into(),
        text_body: "山田 太郎 様\n\n申請番号: 131016-2026-000123\n受付日時: 2026年11月23日\n"
            .into(),
    };
    let id = mailer.send(&email).await.expect("mail accepted");
    assert!(!id.is_empty());
    let second = mailer.send(&email).await.expect("mail accepted");
    assert_ne!(id, second, "every message has its own id");
    if env.kind == Kind::Embedded {
        let outbox = env.embedded_backend().unwrap().data_dir().join("outbox");
        let names: Vec<String> = std::fs::read_dir(&outbox)
            .expect("outbox folder")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let eml = names
            .iter()
            .find(|n| n.ends_with(".eml") && n.contains(&id))
            .unwrap_or_else(|| panic!("no .eml for {id} in {names:?}"));
        let text = std::fs::read_to_string(outbox.join(eml)).unwrap();
        assert!(text.contains("taro.yamada@example.jp"));
        assert!(
            text.contains("UTF-8"),
            "the subject and body are declared UTF-8"
        );
    }
}

async fn bad_mail_refused(env: Env) {
    let (mailer, from) = env.mailer().await;
    let good = Email {
        from,
        to: vec!["a@example.jp".into()],
        subject: "件名".into(),
        text_body: "本文".into(),
    };
    let cases = [
        Email {
            to: vec![],
            ..good.clone()
        },
        Email {
            to: vec!["not an address".into()],
            ..good.clone()
        },
        Email {
            subject: "two\r\nBcc: evil@example.com".into(),
            ..good.clone()
        },
    ];
    for bad in &cases {
        let err = mailer
            .send(bad)
            .await
            .expect_err("bad mail must be refused");
        assert!(matches!(err, PortError::Invalid(_)), "{bad:?}: {err:?}");
    }
}
