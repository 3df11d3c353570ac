//! Property test against the real database: random sequences of entries,
//! FX entries, replays and reversals never break conservation (Σ postings =
//! 0 per currency), every balance equals the sum of its postings, a bounded
//! account never goes below its bound, and the ledger accepts exactly what a
//! simple model says it must.

use std::collections::HashMap;

use bookkeeping::ledger::{
    AccountKind, EntryDraft, Ledger, NewAccount, PostOutcome, PostingDraft, StoreError,
};
use platform_money::Currency;
use platform_test_support::TestDatabase;
use proptest::prelude::*;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::helpers::settings;

/// Accounts of one case: (kind, currency, bounded at 0?).
const ACCOUNTS: [(AccountKind, Currency, bool); 5] = [
    (AccountKind::Asset, Currency::EUR, true),
    (AccountKind::Revenue, Currency::EUR, false),
    (AccountKind::Expense, Currency::EUR, false),
    (AccountKind::Asset, Currency::USD, false),
    (AccountKind::Equity, Currency::USD, false),
];

#[derive(Debug, Clone)]
enum Op {
    /// Legs in one currency (account index, amount); the last leg balances.
    Post {
        currency: Currency,
        legs: Vec<(usize, i64)>,
    },
    /// One EUR pair and one USD pair in one entry.
    Fx {
        eur: i64,
        usd: i64,
    },
    Reverse {
        entry: usize,
    },
    Replay {
        entry: usize,
    },
}

fn accounts_in(currency: Currency) -> Vec<usize> {
    ACCOUNTS
        .iter()
        .enumerate()
        .filter(|(_, a)| a.1 == currency)
        .map(|(i, _)| i)
        .collect()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (prop_oneof![Just(Currency::EUR), Just(Currency::USD)], prop::collection::vec((0usize..5, 1i64..10_000), 1..4)).prop_map(
            |(currency, raw)| {
                let eligible = accounts_in(currency);
                let legs = raw.into_iter().map(|(i, amount)| (eligible[i % eligible.len()], if i % 2 == 0 { amount } else { -amount })).collect();
                Op::Post { currency, legs }
            }
        ),
        1 => (1i64..5_000, 1i64..5_000).prop_map(|(eur, usd)| Op::Fx { eur, usd }),
        2 => (0usize..50).prop_map(|entry| Op::Reverse { entry }),
        1 => (0usize..50).prop_map(|entry| Op::Replay { entry }),
    ]
}

struct Case {
    ledger: Ledger,
    ids: Vec<Uuid>,
    /// Posted entries: id, postings, whether it is a reversal, whether reversed.
    posted: Vec<(EntryDraft, bool, bool)>,
    balances: HashMap<Uuid, i64>,
}

impl Case {
    fn bounded(&self, account: Uuid) -> bool {
        self.ids
            .iter()
            .position(|id| *id == account)
            .is_some_and(|i| ACCOUNTS[i].2)
    }

    /// Would applying `postings` keep every bounded account at >= 0?
    fn fits(&self, postings: &[PostingDraft]) -> bool {
        let mut after = self.balances.clone();
        for p in postings {
            *after.entry(p.account_id).or_default() += p.amount;
            if self.bounded(p.account_id) && after[&p.account_id] < 0 {
                return false;
            }
        }
        true
    }

    fn apply(&mut self, postings: &[PostingDraft]) {
        for p in postings {
            *self.balances.entry(p.account_id).or_default() += p.amount;
        }
    }

    fn draft(&self, legs: &[(usize, i64)], currency: Currency) -> EntryDraft {
        let mut postings: Vec<PostingDraft> = legs
            .iter()
            .map(|(i, a)| PostingDraft {
                account_id: self.ids[*i],
                amount: *a,
                currency,
            })
            .collect();
        let sum: i64 = postings.iter().map(|p| p.amount).sum();
        let balancer = accounts_in(currency)
            .into_iter()
            .find(|i| !ACCOUNTS[*i].2)
            .unwrap_or(1);
        if sum != 0 {
            postings.push(PostingDraft {
                account_id: self.ids[balancer],
                amount: -sum,
                currency,
            });
        } else {
            postings.push(PostingDraft {
                account_id: self.ids[balancer],
                amount: 1,
                currency,
            });
            postings.push(PostingDraft {
                account_id: self.ids[balancer],
                amount: -1,
                currency,
            });
        }
        EntryDraft {
            id: Uuid::new_v4(),
            description: "prop".into(),
            effective_at: OffsetDateTime::now_utc(),
            postings,
            metadata: serde_json::json!({}),
        }
    }

    async fn post(&mut self, draft: EntryDraft) {
        let fits = self.fits(&draft.postings);
        match self.ledger.post(&draft).await {
            Ok(PostOutcome::Created(_)) => {
                assert!(
                    fits,
                    "the ledger accepted an entry that overdraws a bounded account: {draft:?}"
                );
                self.apply(&draft.postings);
                self.posted.push((draft, false, false));
            }
            Err(StoreError::BoundsExceeded { .. }) => {
                assert!(!fits, "the ledger refused an entry that fits: {draft:?}")
            }
            other => panic!("unexpected outcome {other:?} for {draft:?}"),
        }
    }

    async fn run(&mut self, op: Op) {
        match op {
            Op::Post { currency, legs } => {
                let draft = self.draft(&legs, currency);
                self.post(draft).await;
            }
            Op::Fx { eur, usd } => {
                let mut draft = self.draft(&[(1, eur), (2, -eur)], Currency::EUR);
                let usd_legs = self.draft(&[(3, usd), (4, -usd)], Currency::USD);
                draft.postings.extend(usd_legs.postings);
                self.post(draft).await;
            }
            Op::Replay { entry } if !self.posted.is_empty() => {
                let (draft, is_reversal, _) = self.posted[entry % self.posted.len()].clone();
                if !is_reversal {
                    let outcome = self.ledger.post(&draft).await.expect("replay");
                    assert!(
                        matches!(outcome, PostOutcome::Existing(_)),
                        "a replay must not post again"
                    );
                }
            }
            Op::Reverse { entry } if !self.posted.is_empty() => {
                let index = entry % self.posted.len();
                let (draft, is_reversal, reversed) = self.posted[index].clone();
                let negated: Vec<PostingDraft> = draft
                    .postings
                    .iter()
                    .map(|p| PostingDraft {
                        amount: -p.amount,
                        ..p.clone()
                    })
                    .collect();
                let result = self.ledger.reverse(draft.id, Uuid::new_v4()).await;
                match result {
                    Ok(PostOutcome::Created(posted)) => {
                        assert!(
                            !is_reversal && !reversed,
                            "reversed twice or reversed a reversal"
                        );
                        assert!(self.fits(&negated));
                        self.apply(&negated);
                        self.posted[index].2 = true;
                        let as_draft = EntryDraft {
                            id: posted.id,
                            postings: negated,
                            ..draft
                        };
                        self.posted.push((as_draft, true, false));
                    }
                    Err(StoreError::AlreadyReversed(_)) => assert!(reversed),
                    Err(StoreError::ReversalOfReversal(_)) => assert!(is_reversal),
                    Err(StoreError::BoundsExceeded { .. }) => assert!(!self.fits(&negated)),
                    other => panic!("unexpected reversal outcome {other:?}"),
                }
            }
            Op::Replay { .. } | Op::Reverse { .. } => {}
        }
    }
}

async fn audit(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar::<_, String>(&format!(
        "SELECT violation || ': ' || subject FROM ({}) AS audit",
        include_str!("../../sql/audit.sql")
            .trim()
            .trim_end_matches(';')
    ))
    .fetch_all(pool)
    .await
    .expect("audit")
}

#[test]
fn random_entries_and_reversals_keep_the_books_balanced() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (db, pool) = runtime.block_on(async {
        let db = TestDatabase::create(&settings().database).await.unwrap();
        let pool = db.pool().await.unwrap();
        sqlx::migrate!("./migrations").run(&pool).await.unwrap();
        (db, pool)
    });
    let ledger = Ledger::new(pool.clone());

    proptest!(ProptestConfig { cases: 24, ..ProptestConfig::default() }, |(ops in prop::collection::vec(op(), 1..25))| {
        runtime.block_on(async {
            let mut ids = Vec::new();
            for (kind, currency, bounded) in ACCOUNTS {
                let id = Uuid::new_v4();
                let account = NewAccount {
                    id, code: format!("prop:{}", id.simple()), name: "prop".into(), kind, currency,
                    min_balance: bounded.then_some(0), max_balance: None,
                };
                ledger.create_account(&account).await.unwrap();
                ids.push(id);
            }
            let mut case = Case { ledger: ledger.clone(), ids, posted: Vec::new(), balances: HashMap::new() };
            for op in ops {
                case.run(op).await;
            }
            for (id, expected) in &case.balances {
                let balance = case.ledger.balance(*id, bookkeeping::ledger::AsOf::Now).await.unwrap();
                assert_eq!(balance.balance, *expected, "account {id}");
            }
            let violations = audit(&pool).await;
            assert!(violations.is_empty(), "{violations:?}");
        });
    });
    drop(db);
}
