-- The platform's ledger audit (issue 12), run by the fault-injection suite
-- (tests/tests/chaos.rs) and by operators after an incident:
--   psql postgres://bookkeeping:…@127.0.0.1:5432/bookkeeping -qAt -f sql/audit.sql
-- Prints one line per violation; no output means the books hold.
--
-- 1. Conservation (bookkeeping's own audit, one source): every currency nets
--    to zero, every entry balances, balances = Σ postings, bounds, currencies.
\ir ../services/bookkeeping/sql/audit.sql

-- 2. Nothing doubled by redelivery: one ledger entry per succeeded payment
--    and one reversal per refund (an event applied twice under two event ids
--    would pass the inbox and show up here), and no reversal without the
--    payment's entry.
SELECT 'payment has more than one ledger entry' AS violation, metadata->>'payment_id' AS subject, count(*)::text AS detail
  FROM entries
 WHERE metadata ? 'payment_id' AND NOT metadata ? 'refund_id'
 GROUP BY metadata->>'payment_id' HAVING count(*) > 1
UNION ALL
SELECT 'refund has more than one reversal entry', metadata->>'refund_id', count(*)::text
  FROM entries
 WHERE metadata ? 'refund_id'
 GROUP BY metadata->>'refund_id' HAVING count(*) > 1
UNION ALL
SELECT 'refund entry without its payment''s entry', r.metadata->>'refund_id', r.metadata->>'payment_id'
  FROM entries r
 WHERE r.metadata ? 'refund_id'
   AND NOT EXISTS (SELECT 1 FROM entries p
                    WHERE p.metadata->>'payment_id' = r.metadata->>'payment_id'
                      AND NOT p.metadata ? 'refund_id');
