-- v10: the totals tables lose their last-seen indexes (issue 11.7).
--
-- Every write moved each of its sessions and customers in these indexes: a
-- delete at the old last-seen time, on a page anywhere in the index, and an
-- insert at the end. Under load every commit thus rewrote most of their
-- pages (the pipeline benchmark's 5,000 sessions and 1,000 customers: a
-- few dozen pages per commit, each a WAL frame), for an order that only
-- the lists' default sort and their time-range test read. Without them,
-- those reads walk the project's rows of the table in primary-key order,
-- as the lists' other sorts (by cost, by generations) already did: about
-- 9 ms at 50,000 sessions, growing with the project's sessions. In the
-- pipeline benchmark the collector spent about 5% less CPU per span
-- without them (2.01 -> 1.92 s per 10,000 spans, two runs of 3 rounds).
-- PostgreSQL keeps its indexes (several writers, and no frame per page).
DROP INDEX session_totals_last_seen;
DROP INDEX customer_totals_last_seen;
