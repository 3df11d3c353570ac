-- Conservation audit of the whole ledger. Returns one row per violation;
-- an empty result means the books are consistent. Run after the tests
-- (tests/api/helpers.rs) and by operators at will:
--   psql ... -f services/bookkeeping/sql/audit.sql
SELECT 'currency does not net to zero' AS violation, currency AS subject, sum(amount)::text AS detail
  FROM postings GROUP BY currency HAVING sum(amount) <> 0
UNION ALL
SELECT 'entry does not balance', entry_id::text || ' ' || currency, sum(amount)::text
  FROM postings GROUP BY entry_id, currency HAVING sum(amount) <> 0
UNION ALL
SELECT 'entry has fewer than two postings', e.id::text, count(p.entry_id)::text
  FROM entries e LEFT JOIN postings p ON p.entry_id = e.id GROUP BY e.id HAVING count(p.entry_id) < 2
UNION ALL
SELECT 'running balance differs from its postings', a.id::text, a.balance::text || ' vs ' || coalesce(sum(p.amount), 0)::text
  FROM accounts a LEFT JOIN postings p ON p.account_id = a.id
 GROUP BY a.id, a.balance HAVING a.balance <> coalesce(sum(p.amount), 0)
UNION ALL
SELECT 'account outside its bounds', a.id::text, (normal_sign(a.kind) * a.balance)::text
  FROM accounts a
 WHERE (a.min_balance IS NOT NULL AND normal_sign(a.kind) * a.balance < a.min_balance)
    OR (a.max_balance IS NOT NULL AND normal_sign(a.kind) * a.balance > a.max_balance)
UNION ALL
SELECT 'posting currency differs from its account', p.entry_id::text, p.currency || ' vs ' || a.currency
  FROM postings p JOIN accounts a ON a.id = p.account_id WHERE p.currency <> a.currency;
