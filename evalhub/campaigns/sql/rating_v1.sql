-- The annotator's hot loop in one round trip (PostgreSQL only; installed by migration 0004).
--
-- These functions do, statement for statement, what evalhub/campaigns/{raters,leasing,
-- voting}.py do through the ORM: find the rater (API token or session user) and the campaign
-- they may rate, store a vote exactly once, lease the next task. A vote then costs one round
-- trip, one transaction and no query planning (PL/pgSQL keeps its plans per session), instead
-- of about twenty ORM queries. Every rule lives in both places and tests/campaigns runs one
-- specification against both paths.
--
-- Results are jsonb. Refusals are returned *before* any write, as {"code": ...}; Python words
-- them. A unique violation (a race the pre-checks cannot see) raises, so the whole call rolls
-- back and the caller settles that vote on the ORM path.
--
-- Times are statement_timestamp(), not now(): the time of this call even when a caller (a
-- test, a batch) runs it inside a longer transaction.


-- The rater's user id and the campaign, if the rater is an active user with any role in the
-- campaign's project; else a refusal code. Mirrors raters.rater_campaign.
-- Migration 0007 replaces this body: a user id (p_user) must belong to an active account too.
CREATE OR REPLACE FUNCTION evalhub_rater_campaign_v1(
    p_token text, p_user integer, p_campaign bigint,
    OUT o_user integer, OUT o_campaign campaigns_campaign, OUT o_refusal text
)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_token IS NOT NULL THEN
        SELECT t.user_id INTO o_user FROM authtoken_token t
        JOIN auth_user u ON u.id = t.user_id AND u.is_active
        WHERE t.key = p_token;
        IF o_user IS NULL THEN
            o_refusal := 'bad_token';
            RETURN;
        END IF;
    ELSE
        o_user := p_user;
    END IF;
    SELECT c.* INTO o_campaign FROM campaigns_campaign c
    WHERE c.id = p_campaign AND EXISTS (
        SELECT 1 FROM projects_membership m
        WHERE m.project_id = c.project_id AND m.user_id = o_user);
    IF o_campaign.id IS NULL THEN
        o_refusal := 'no_campaign';
    END IF;
END
$$;


CREATE OR REPLACE FUNCTION evalhub_campaign_json_v1(c campaigns_campaign) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('id', c.id, 'project_id', c.project_id, 'name', c.name,
                              'status', c.status, 'pair_policy', c.pair_policy,
                              'criteria', c.criteria)
$$;


-- PL/pgSQL rather than SQL: PL/pgSQL keeps its plans for the session, while a SQL function
-- called from PL/pgSQL is planned again on every call.
CREATE OR REPLACE FUNCTION evalhub_lease_payload_v1(p_lease uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT jsonb_build_object(
        'lease', l.id,
        'expires_at', l.expires_at,
        'a_side', l.a_side,
        'prompt', p.text,
        'source', CASE WHEN s.id IS NULL THEN NULL ELSE jsonb_build_object(
            'file', s.file, 'sha256', s.sha256, 'width', s.width, 'height', s.height) END,
        'image_a', jsonb_build_object(
            'file', ba.file, 'sha256', ba.sha256, 'width', ba.width, 'height', ba.height),
        'image_b', jsonb_build_object(
            'file', bb.file, 'sha256', bb.sha256, 'width', bb.width, 'height', bb.height))
    FROM campaigns_lease l
    JOIN campaigns_comparisontask t ON t.id = l.task_id
    JOIN prompts_prompt p ON p.id = t.prompt_id
    JOIN runs_image ia ON ia.id = t.image_a_id
    JOIN blobs_imageblob ba ON ba.id = ia.blob_id
    JOIN runs_image ib ON ib.id = t.image_b_id
    JOIN blobs_imageblob bb ON bb.id = ib.blob_id
    LEFT JOIN blobs_imageblob s ON s.id = p.source_image_id
    WHERE l.id = p_lease);
END
$$;


-- The first free task for this annotator in serving order, locked (SKIP LOCKED: concurrent
-- annotators take different tasks without waiting), or NULL. Mirrors leasing._candidates.
--
-- Serving order is the index order: (priority DESC for the active policy,) judgments_count,
-- shuffle_key. p_tier_* and p_from narrow the walk to one tier starting at a random
-- shuffle_key (see evalhub_lease_next_v1); NULLs mean "the whole order".
--
-- A task is free when no lease holds it now and this annotator never judged, skipped or
-- reported it. Both checks are scalar subqueries probing the task's own leases and judgments
-- by task id, one candidate row at a time: the walk looks at a few rows, while as NOT EXISTS
-- anti-joins the planner (on statistics a few minutes old) chose to read every active lease
-- of the table on every call, a cost that grew with each vote.
CREATE OR REPLACE FUNCTION evalhub_lock_candidate_v1(
    p_campaign bigint, p_annotator integer, p_gold boolean, p_active_policy boolean,
    p_passed_over bigint[], p_tier_priority double precision, p_tier_count integer,
    p_from double precision, p_below double precision
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_task bigint;
BEGIN
    IF p_tier_count IS NULL THEN
        IF p_active_policy THEN
            SELECT t.id INTO v_task FROM campaigns_comparisontask t
            WHERE t.campaign_id = p_campaign AND t.is_gold = p_gold
              AND (p_gold OR t.judgments_count < t.judgments_needed)
              AND t.id <> ALL (p_passed_over)
              AND (SELECT true FROM campaigns_lease l WHERE l.task_id = t.id
                   AND (l.status = 'active' AND l.expires_at > statement_timestamp()
                        OR l.annotator_id = p_annotator AND l.status NOT IN ('expired', 'active'))
                   LIMIT 1) IS NULL
              AND (SELECT true FROM campaigns_judgment j WHERE j.task_id = t.id
                   AND j.annotator_id = p_annotator AND j.retracted_at IS NULL
                   LIMIT 1) IS NULL
            ORDER BY t.priority DESC, t.judgments_count, t.shuffle_key
            LIMIT 1 FOR UPDATE OF t SKIP LOCKED;
        ELSE
            SELECT t.id INTO v_task FROM campaigns_comparisontask t
            WHERE t.campaign_id = p_campaign AND t.is_gold = p_gold
              AND (p_gold OR t.judgments_count < t.judgments_needed)
              AND t.id <> ALL (p_passed_over)
              AND (SELECT true FROM campaigns_lease l WHERE l.task_id = t.id
                   AND (l.status = 'active' AND l.expires_at > statement_timestamp()
                        OR l.annotator_id = p_annotator AND l.status NOT IN ('expired', 'active'))
                   LIMIT 1) IS NULL
              AND (SELECT true FROM campaigns_judgment j WHERE j.task_id = t.id
                   AND j.annotator_id = p_annotator AND j.retracted_at IS NULL
                   LIMIT 1) IS NULL
            ORDER BY t.judgments_count, t.shuffle_key
            LIMIT 1 FOR UPDATE OF t SKIP LOCKED;
        END IF;
    ELSIF p_active_policy THEN
        -- One tier: same priority and judgments_count, shuffle_key in [p_from, p_below).
        -- Equality on the leading columns keeps each of these an index range scan.
        SELECT t.id INTO v_task FROM campaigns_comparisontask t
        WHERE t.campaign_id = p_campaign AND t.is_gold = p_gold
          AND t.priority = p_tier_priority AND t.judgments_count = p_tier_count
          AND t.shuffle_key >= p_from AND t.shuffle_key < p_below
          AND (p_gold OR t.judgments_count < t.judgments_needed)
          AND t.id <> ALL (p_passed_over)
          AND (SELECT true FROM campaigns_lease l WHERE l.task_id = t.id
               AND (l.status = 'active' AND l.expires_at > statement_timestamp()
                    OR l.annotator_id = p_annotator AND l.status NOT IN ('expired', 'active'))
               LIMIT 1) IS NULL
          AND (SELECT true FROM campaigns_judgment j WHERE j.task_id = t.id
               AND j.annotator_id = p_annotator AND j.retracted_at IS NULL
               LIMIT 1) IS NULL
        ORDER BY t.shuffle_key
        LIMIT 1 FOR UPDATE OF t SKIP LOCKED;
    ELSE
        SELECT t.id INTO v_task FROM campaigns_comparisontask t
        WHERE t.campaign_id = p_campaign AND t.is_gold = p_gold
          AND t.judgments_count = p_tier_count
          AND t.shuffle_key >= p_from AND t.shuffle_key < p_below
          AND (p_gold OR t.judgments_count < t.judgments_needed)
          AND t.id <> ALL (p_passed_over)
          AND (SELECT true FROM campaigns_lease l WHERE l.task_id = t.id
               AND (l.status = 'active' AND l.expires_at > statement_timestamp()
                    OR l.annotator_id = p_annotator AND l.status NOT IN ('expired', 'active'))
               LIMIT 1) IS NULL
          AND (SELECT true FROM campaigns_judgment j WHERE j.task_id = t.id
               AND j.annotator_id = p_annotator AND j.retracted_at IS NULL
               LIMIT 1) IS NULL
        ORDER BY t.shuffle_key
        LIMIT 1 FOR UPDATE OF t SKIP LOCKED;
    END IF;
    RETURN v_task;
END
$$;


-- Lease a free task, or NULL. Mirrors leasing._take: the best tier first, walked from a random
-- point (p_start in [0, 1)) and wrapping around, so concurrent annotators start at different
-- tasks instead of all passing over the ones the others hold; then the whole serving order.
CREATE OR REPLACE FUNCTION evalhub_take_v1(
    p_campaign bigint, p_annotator integer, p_gold boolean, p_active_policy boolean,
    p_start double precision, p_new_lease uuid, p_new_a_side text, p_lease_seconds integer
) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_tier_priority double precision;
    v_tier_count integer;
    v_task bigint;
    v_leased uuid;
    v_passed bigint[] := '{}';
    v_step integer := 0;
BEGIN
    -- The best tier: the first row of the serving index among tasks still needing votes.
    IF p_active_policy THEN
        SELECT t.priority, t.judgments_count INTO v_tier_priority, v_tier_count
        FROM campaigns_comparisontask t
        WHERE t.campaign_id = p_campaign AND t.is_gold = p_gold
          AND (p_gold OR t.judgments_count < t.judgments_needed)
        ORDER BY t.priority DESC, t.judgments_count, t.shuffle_key
        LIMIT 1;
    ELSE
        SELECT t.priority, t.judgments_count INTO v_tier_priority, v_tier_count
        FROM campaigns_comparisontask t
        WHERE t.campaign_id = p_campaign AND t.is_gold = p_gold
          AND (p_gold OR t.judgments_count < t.judgments_needed)
        ORDER BY t.judgments_count, t.shuffle_key
        LIMIT 1;
    END IF;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    FOR attempt IN 1..20 LOOP
        -- Steps: 0 = tier from p_start, 1 = tier before p_start, 2 = whole order.
        LOOP
            v_task := evalhub_lock_candidate_v1(
                p_campaign, p_annotator, p_gold, p_active_policy, v_passed,
                v_tier_priority,
                CASE WHEN v_step < 2 THEN v_tier_count END,
                CASE WHEN v_step = 0 THEN p_start ELSE 0 END,
                CASE WHEN v_step = 0 THEN 2 ELSE p_start END);
            EXIT WHEN v_task IS NOT NULL OR v_step = 2;
            v_step := v_step + 1;
        END LOOP;
        EXIT WHEN v_task IS NULL;
        -- An expired lease still marked active would block the unique index.
        UPDATE campaigns_lease SET status = 'expired', closed_at = statement_timestamp()
        WHERE task_id = v_task AND status = 'active' AND expires_at <= statement_timestamp();
        -- The candidate query ran on a snapshot: someone may have leased the task since. The
        -- partial unique index then refuses the row and the task is passed over.
        INSERT INTO campaigns_lease (id, task_id, campaign_id, annotator_id, a_side, status,
                                     leased_at, expires_at)
        VALUES (p_new_lease, v_task, p_campaign, p_annotator, p_new_a_side, 'active',
                statement_timestamp(),
                statement_timestamp() + make_interval(secs => p_lease_seconds))
        ON CONFLICT (task_id) WHERE status = 'active' DO NOTHING
        RETURNING id INTO v_leased;
        IF v_leased IS NOT NULL THEN
            RETURN v_leased;
        END IF;
        v_passed := v_passed || v_task;
    END LOOP;
    RETURN NULL;
END
$$;


-- Give the annotator a task: one they already hold (and the page does not show yet), or a
-- newly leased one. Mirrors leasing.lease_next. The caller draws the random numbers (gold
-- coin, starting point, lease id, side of image A), as the ORM path does in Python.
CREATE OR REPLACE FUNCTION evalhub_lease_next_inner_v1(
    p_campaign campaigns_campaign, p_annotator integer, p_exclude uuid[],
    p_gold_draw double precision, p_start double precision, p_new_lease uuid,
    p_new_a_side text, p_max_active integer
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_holding integer := 0;
    v_shown uuid;
    v_held uuid;
    v_leased uuid;
    v_active boolean := p_campaign.pair_policy = 'active';
BEGIN
    IF p_campaign.status <> 'active' THEN
        RETURN jsonb_build_object('done', true, 'code', 'closed');
    END IF;
    FOR v_shown IN
        SELECT id FROM campaigns_lease
        WHERE campaign_id = p_campaign.id AND annotator_id = p_annotator AND status = 'active'
          AND expires_at > statement_timestamp()
        ORDER BY leased_at
    LOOP
        v_holding := v_holding + 1;
        IF v_held IS NULL AND NOT (v_shown = ANY (p_exclude)) THEN
            v_held := v_shown;
        END IF;
    END LOOP;
    IF v_held IS NOT NULL THEN
        RETURN evalhub_lease_payload_v1(v_held);
    END IF;
    IF v_holding >= p_max_active THEN
        RETURN jsonb_build_object('done', true, 'code', 'holding_max');
    END IF;
    IF p_campaign.gold_rate > 0 AND p_gold_draw < p_campaign.gold_rate THEN
        v_leased := evalhub_take_v1(p_campaign.id, p_annotator, true, v_active, p_start,
                                    p_new_lease, p_new_a_side, p_campaign.lease_seconds);
    END IF;
    IF v_leased IS NULL THEN
        v_leased := evalhub_take_v1(p_campaign.id, p_annotator, false, v_active, p_start,
                                    p_new_lease, p_new_a_side, p_campaign.lease_seconds);
    END IF;
    IF v_leased IS NULL THEN
        RETURN jsonb_build_object('done', true, 'code', 'nothing_left');
    END IF;
    RETURN evalhub_lease_payload_v1(v_leased);
END
$$;


-- POST /api/v1/rate/<campaign>/next/ in one call.
CREATE OR REPLACE FUNCTION evalhub_rate_next_v1(
    p_token text, p_user integer, p_campaign bigint, p_exclude uuid[],
    p_gold_draw double precision, p_start double precision, p_new_lease uuid,
    p_new_a_side text, p_max_active integer
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_rater record;
BEGIN
    v_rater := evalhub_rater_campaign_v1(p_token, p_user, p_campaign);
    IF v_rater.o_refusal IS NOT NULL THEN
        RETURN jsonb_build_object('code', v_rater.o_refusal);
    END IF;
    RETURN jsonb_build_object(
        'code', 'ok', 'rater', v_rater.o_user,
        'campaign', evalhub_campaign_json_v1(v_rater.o_campaign),
        'next', evalhub_lease_next_inner_v1(
            v_rater.o_campaign, v_rater.o_user, p_exclude, p_gold_draw, p_start, p_new_lease,
            p_new_a_side, p_max_active));
END
$$;


-- POST /api/v1/rate/<campaign>/votes/ in one call: store one vote (one judgment per
-- criterion) exactly once, count the rater's votes, and optionally lease the next task.
-- Mirrors voting.vote_submit: the lease row is locked first, so a retry racing with its
-- original waits for it and then finds the stored vote instead of counting again.
CREATE OR REPLACE FUNCTION evalhub_rate_vote_v1(
    p_token text, p_user integer, p_campaign bigint, p_lease uuid, p_client uuid,
    p_answers jsonb, p_latency integer,
    p_want_next boolean, p_exclude uuid[], p_gold_draw double precision,
    p_start double precision, p_new_lease uuid, p_new_a_side text, p_max_active integer
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_rater record;
    v_user integer;
    v_lease campaigns_lease%ROWTYPE;
    v_judgments jsonb;
    v_all_mine boolean;
    v_created boolean := true;
    v_my_votes bigint;
    v_campaign_json jsonb;
BEGIN
    v_rater := evalhub_rater_campaign_v1(p_token, p_user, p_campaign);
    IF v_rater.o_refusal IS NOT NULL THEN
        RETURN jsonb_build_object('code', v_rater.o_refusal);
    END IF;
    v_user := v_rater.o_user;
    v_campaign_json := evalhub_campaign_json_v1(v_rater.o_campaign);

    SELECT * INTO v_lease FROM campaigns_lease WHERE id = p_lease FOR UPDATE;
    IF NOT FOUND OR v_lease.annotator_id <> v_user OR v_lease.campaign_id <> p_campaign THEN
        RETURN jsonb_build_object('code', 'not_leased', 'campaign', v_campaign_json);
    END IF;

    SELECT bool_and(annotator_id = v_user), jsonb_object_agg(criterion, outcome)
    INTO v_all_mine, v_judgments
    FROM campaigns_judgment WHERE client_id = p_client;
    IF v_judgments IS NOT NULL THEN
        IF NOT v_all_mine THEN
            RETURN jsonb_build_object('code', 'foreign_vote_id', 'campaign', v_campaign_json);
        END IF;
        v_created := false;
    ELSE
        IF (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(p_answers) AS k)
           IS DISTINCT FROM
           (SELECT array_agg(c ORDER BY c)
            FROM jsonb_array_elements_text((v_rater.o_campaign).criteria) AS c)
        THEN
            RETURN jsonb_build_object('code', 'invalid_answers', 'campaign', v_campaign_json);
        END IF;
        IF v_lease.status = 'expired' THEN
            -- A late vote still counts if nobody else has taken the task meanwhile.
            IF EXISTS (SELECT 1 FROM campaigns_lease WHERE task_id = v_lease.task_id
                       AND status = 'active' AND id <> v_lease.id) THEN
                RETURN jsonb_build_object('code', 'lease_taken', 'campaign', v_campaign_json);
            END IF;
        ELSIF v_lease.status <> 'active' THEN
            RETURN jsonb_build_object('code', 'lease_closed', 'status', v_lease.status,
                                      'campaign', v_campaign_json);
        END IF;

        -- Displayed answers to canonical outcomes: A is the image shown on a_side.
        SELECT jsonb_object_agg(key, CASE
                   WHEN value IN ('tie', 'both_bad') THEN value
                   WHEN value = v_lease.a_side THEN 'a'
                   ELSE 'b' END)
        INTO v_judgments FROM jsonb_each_text(p_answers);
        INSERT INTO campaigns_judgment (task_id, campaign_id, criterion, outcome, judge_kind,
                                        metric_name, annotator_id, lease_id, a_side, latency_ms,
                                        client_id, created_at)
        SELECT v_lease.task_id, v_lease.campaign_id, key, value, 'human', '', v_user,
               v_lease.id, v_lease.a_side, p_latency, p_client, statement_timestamp()
        FROM jsonb_each_text(v_judgments);
        UPDATE campaigns_lease SET status = 'completed', closed_at = statement_timestamp()
        WHERE id = v_lease.id;
        UPDATE campaigns_comparisontask SET judgments_count = judgments_count + 1
        WHERE id = v_lease.task_id;
    END IF;

    SELECT count(*) INTO v_my_votes FROM campaigns_judgment
    WHERE campaign_id = p_campaign AND annotator_id = v_user AND criterion = 'overall'
      AND judge_kind = 'human' AND retracted_at IS NULL;

    RETURN jsonb_build_object(
        'code', 'ok', 'rater', v_user, 'created', v_created, 'judgments', v_judgments,
        'my_votes', v_my_votes, 'campaign', v_campaign_json,
        'next', CASE WHEN p_want_next THEN evalhub_lease_next_inner_v1(
            v_rater.o_campaign, v_user, p_exclude, p_gold_draw, p_start, p_new_lease,
            p_new_a_side, p_max_active) END);
END
$$;
