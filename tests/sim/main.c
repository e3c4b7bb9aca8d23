/* main.c: raft-sim's command line: run seeds, one seed with its trace hash, a determinism
 * check, the stability scenario, and expected-failure runs for the deliberate bugs. */
#include "sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr, "usage: raft-sim [--seeds N [--first S] | --seed S] [options]\n"
                    "  --seeds N           run N seeds (S, S+1, ...); stop at the first failure\n"
                    "  --first S           first seed of --seeds (default 1)\n"
                    "  --seed S            run one seed, print its trace hash (trace=...)\n"
                    "  --check-determinism run the seed(s) twice and compare the trace hashes\n"
                    "  --keep-going        run every seed even after a failure, count failures\n"
                    "  --verbose           print the event trace and the core's trace lines\n"
                    "  --bug NAME          inject a deliberate core bug (repeatable):");
    for (int i = 0; sim_bug_names[i]; i++)
        fprintf(stderr, " %s", sim_bug_names[i]);
    fprintf(stderr, "\n"
                    "  --expect-failure L  succeed only if a seed fails with an invariant in the\n"
                    "                      comma-separated list L (or 'any' safety invariant)\n"
                    "  --incarnations      hosts: a restart without state is a new incarnation\n"
                    "  --no-prevote        disable Pre-Vote\n"
                    "  --no-checkquorum    disable Check-Quorum\n"
                    "  --nodes 3|5         cluster size (default: chosen by seed)\n"
                    "  --duration MS       length of the fault phase in virtual ms\n"
                    "  --scenario stability  the stability scenario (one flaky node)\n");
}

static bool in_list(const char *list, const char *name)
{
    if (strcmp(list, "any") == 0)
        return strcmp(name, "liveness") != 0 && strcmp(name, "core-error") != 0 &&
               strcmp(name, "internal") != 0;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p = e ? e + 1 : p + len;
    }
    return false;
}

static void print_failure(const sim_opts_t *o, const sim_result_t *r)
{
    printf("raft-sim: FAIL seed=%" PRIu64 " invariant=%s: %s\n", o->seed, r->invariant, r->what);
    printf("raft-sim: reproduce with: raft-sim --seed %" PRIu64 " --verbose", o->seed);
    for (int i = 0; sim_bug_names[i]; i++)
        if (o->bugs & (1u << i))
            printf(" --bug %s", sim_bug_names[i]);
    if (o->incarnations)
        printf(" --incarnations");
    if (o->no_prevote)
        printf(" --no-prevote");
    if (o->no_checkquorum)
        printf(" --no-checkquorum");
    if (o->nodes)
        printf(" --nodes %d", o->nodes);
    if (o->duration_ms)
        printf(" --duration %" PRIu64, o->duration_ms);
    printf("\n");
}

/* The stability scenario: for each cluster size and flaky mode, count how often the majority's
 * term moves with Pre-Vote + Check-Quorum, then without. */
static int run_stability(const sim_opts_t *base, uint64_t first, uint64_t seeds)
{
    int sizes[2] = {3, 5}, n_sizes = 2;
    if (base->nodes) {
        sizes[0] = base->nodes;
        n_sizes = 1;
    }
    static const char *const modes[] = {"", "lossy (70% loss)", "isolated on and off"};
    int rc = 0;
    uint64_t window = base->duration_ms ? base->duration_ms : 60000;
    for (int si = 0; si < n_sizes; si++) {
        for (int mode = 1; mode <= 2; mode++) {
            /* variants: both on, Pre-Vote only, Check-Quorum only, both off */
            static const bool no_pv[4] = {false, false, true, true};
            static const bool no_cq[4] = {false, true, false, true};
            uint64_t moves[4] = {0, 0, 0, 0};
            for (int v = 0; v < 4; v++) {
                for (uint64_t k = 0; k < seeds; k++) {
                    sim_opts_t o = *base;
                    o.seed = first + k;
                    o.nodes = sizes[si];
                    o.no_faults = true;
                    o.flaky_mode = mode;
                    o.duration_ms = window;
                    o.no_prevote = base->no_prevote || no_pv[v];
                    o.no_checkquorum = base->no_checkquorum || no_cq[v];
                    sim_result_t r;
                    if (sim_run(&o, &r) != 0)
                        return 2;
                    if (r.failed) {
                        print_failure(&o, &r);
                        printf("raft-sim: (stability scenario, flaky mode %d)\n", mode);
                        return 1;
                    }
                    moves[v] += r.majority_term_changes;
                }
            }
            printf("stability n=%d flaky node %s: majority term changes in %" PRIu64 " s x %" PRIu64
                   " seeds: %" PRIu64 " with prevote+checkquorum%s, %" PRIu64
                   " with prevote only, %" PRIu64 " with checkquorum only, %" PRIu64 " without\n",
                   sizes[si], modes[mode], window / 1000, seeds, moves[0],
                   (base->no_prevote || base->no_checkquorum) ? " (as overridden)" : "", moves[1],
                   moves[2], moves[3]);
            if (moves[0] != 0 && !base->no_prevote && !base->no_checkquorum) {
                printf("raft-sim: FAIL stability: the majority's term moved %" PRIu64
                       " times with Pre-Vote and Check-Quorum on (n=%d, %s, seeds %" PRIu64
                       "..%" PRIu64 ")\n",
                       moves[0], sizes[si], modes[mode], first, first + seeds - 1);
                rc = 1;
            }
        }
    }
    return rc;
}

/* --incarnations: how often each fault of the mode happened, and in how many runs. */
typedef struct fault_tally {
    uint64_t count[7], runs[7];
} fault_tally_t;

static const char *const tally_names[7] = {"restart_empty", "replace_during_replace",
                                           "majority_lost", "bootstrap_with_placeholder",
                                           "start_overs",   "refounds",
                                           "offers_adopted"};

static void tally_add(fault_tally_t *t, const sim_result_t *r)
{
    const uint64_t v[7] = {r->restart_empty, r->replace_during_replace,
                           r->majority_lost, r->bootstrap_with_placeholder,
                           r->start_overs,   r->refounds,
                           r->offers_adopted};
    for (int i = 0; i < 7; i++) {
        t->count[i] += v[i];
        t->runs[i] += v[i] > 0;
    }
}

static void tally_print(const fault_tally_t *t, const char *which, bool runs)
{
    printf("faults%s%s%s:", which ? " (" : "", which ? which : "", which ? ")" : "");
    for (int i = 0; i < 7; i++) {
        printf(" %s=%" PRIu64, tally_names[i], t->count[i]);
        if (runs)
            printf(" (%" PRIu64 " runs)", t->runs[i]);
    }
    printf("\n");
}

/* Failures by invariant (--keep-going). */
typedef struct failure_tally {
    char name[16][48];
    uint64_t count[16];
    int n;
} failure_tally_t;

static void failure_count(failure_tally_t *f, const char *invariant)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->name[i], invariant) == 0) {
            f->count[i]++;
            return;
        }
    if (f->n < 16) {
        snprintf(f->name[f->n], sizeof f->name[0], "%s", invariant);
        f->count[f->n++] = 1;
    }
}

static uint64_t parse_u64(const char *s, const char *flag)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end) {
        fprintf(stderr, "raft-sim: bad number for %s: %s\n", flag, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    sim_opts_t o = {0};
    uint64_t seeds = 0, first = 1;
    bool one = false, determinism = false, stability = false, keep_going = false;
    uint64_t failures = 0;
    const char *expect = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV                                                                                      \
    do {                                                                                           \
        if (!v) {                                                                                  \
            usage();                                                                               \
            return 2;                                                                              \
        }                                                                                          \
        i++;                                                                                       \
    } while (0)
        if (strcmp(a, "--seeds") == 0) {
            NEEDV;
            seeds = parse_u64(v, a);
        } else if (strcmp(a, "--first") == 0) {
            NEEDV;
            first = parse_u64(v, a);
        } else if (strcmp(a, "--seed") == 0) {
            NEEDV;
            first = parse_u64(v, a);
            one = true;
        } else if (strcmp(a, "--verbose") == 0) {
            o.verbose = true;
        } else if (strcmp(a, "--bug") == 0) {
            NEEDV;
            uint32_t f = sim_bug_flag(v);
            if (!f) {
                fprintf(stderr, "raft-sim: unknown bug %s\n", v);
                usage();
                return 2;
            }
            o.bugs |= f;
        } else if (strcmp(a, "--expect-failure") == 0) {
            NEEDV;
            expect = v;
        } else if (strcmp(a, "--incarnations") == 0) {
            o.incarnations = true;
        } else if (strcmp(a, "--no-prevote") == 0) {
            o.no_prevote = true;
        } else if (strcmp(a, "--no-checkquorum") == 0) {
            o.no_checkquorum = true;
        } else if (strcmp(a, "--nodes") == 0) {
            NEEDV;
            o.nodes = (int)parse_u64(v, a);
            if (o.nodes != 3 && o.nodes != 5) {
                fprintf(stderr, "raft-sim: --nodes must be 3 or 5\n");
                return 2;
            }
        } else if (strcmp(a, "--duration") == 0) {
            NEEDV;
            o.duration_ms = parse_u64(v, a);
        } else if (strcmp(a, "--keep-going") == 0) {
            keep_going = true;
        } else if (strcmp(a, "--check-determinism") == 0) {
            determinism = true;
        } else if (strcmp(a, "--scenario") == 0) {
            NEEDV;
            if (strcmp(v, "stability") != 0) {
                fprintf(stderr, "raft-sim: unknown scenario %s\n", v);
                return 2;
            }
            stability = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 0;
        } else {
            fprintf(stderr, "raft-sim: unknown argument %s\n", a);
            usage();
            return 2;
        }
#undef NEEDV
    }
    if (stability)
        return run_stability(&o, first, seeds ? seeds : 3);
    if (one)
        seeds = 1;
    if (seeds == 0) {
        usage();
        return 2;
    }
    if (expect)
        o.quiet_failure = true;

    sim_result_t total = {0};
    uint64_t runs_new_inc = 0, runs_replaced = 0;
    fault_tally_t tally = {0};
    failure_tally_t failed_by = {0};
    bool base_incarnations =
        o.incarnations || (o.bugs & (RAFT_BUG_SWAP_VOTERS | RAFT_BUG_JOIN_VOTES));
    for (uint64_t k = 0; k < seeds; k++) {
        o.seed = first + k;
        sim_result_t r;
        if (sim_run(&o, &r) != 0)
            return 2;
        if (determinism) {
            sim_opts_t o2 = o;
            o2.verbose = false;
            o2.quiet_failure = true;
            sim_result_t r2;
            if (sim_run(&o2, &r2) != 0)
                return 2;
            printf("seed=%" PRIu64 " trace=%016" PRIx64 " second run trace=%016" PRIx64 "\n",
                   o.seed, r.trace_hash, r2.trace_hash);
            if (r.trace_hash != r2.trace_hash || r.events != r2.events) {
                printf("raft-sim: FAIL seed=%" PRIu64 " invariant=determinism: two runs differ\n",
                       o.seed);
                return 1;
            }
        }
        if (r.failed) {
            if (expect) {
                if (in_list(expect, r.invariant)) {
                    printf("raft-sim: expected failure found: seed=%" PRIu64 " invariant=%s: %s\n",
                           o.seed, r.invariant, r.what);
                    return 0;
                }
                /* a liveness problem on the way does not say whether the safety checks
                 * catch the injected bug: look further */
                if (strcmp(r.invariant, "liveness") == 0 ||
                    strcmp(r.invariant, "message-storm") == 0) {
                    failures++;
                    continue;
                }
                printf("raft-sim: seed=%" PRIu64 " failed with the wrong invariant (%s, expected "
                       "%s): %s\n",
                       o.seed, r.invariant, expect, r.what);
                return 1;
            }
            print_failure(&o, &r);
            if (one)
                printf("trace=%016" PRIx64 "\n", r.trace_hash);
            if (!keep_going)
                return 1;
            failures++;
            failure_count(&failed_by, r.invariant);
            continue;
        }
        total.vtime += r.vtime;
        total.events += r.events;
        total.leader_changes += r.leader_changes;
        total.committed += r.committed;
        total.acked += r.acked;
        total.reads_checked += r.reads_checked;
        total.resets += r.resets;
        total.forfeits += r.forfeits;
        total.new_incarnations += r.new_incarnations;
        total.replacements += r.replacements;
        runs_new_inc += r.new_incarnations > 0;
        runs_replaced += r.replacements > 0;
        tally_add(&tally, &r);
        if (one)
            printf("seed=%" PRIu64 " nodes=%d virtual=%.1fs events=%" PRIu64
                   " leader_changes=%" PRIu64 " committed=%" PRIu64 " acked=%" PRIu64
                   " reads=%" PRIu64 " resets=%" PRIu64 " forfeits=%" PRIu64 "\ntrace=%016" PRIx64
                   "\n",
                   o.seed, r.nodes, (double)r.vtime / 1000.0, r.events, r.leader_changes,
                   r.committed, r.acked, r.reads_checked, r.resets, r.forfeits, r.trace_hash);
        if (one && base_incarnations) {
            fault_tally_t t1 = {0};
            tally_add(&t1, &r);
            tally_print(&t1, NULL, false);
        }
    }
    if (expect) {
        printf("raft-sim: FAIL: no seed in %" PRIu64 "..%" PRIu64 " violated %s (%" PRIu64
               " failed liveness instead)\n",
               first, first + seeds - 1, expect, failures);
        return 1;
    }
    if (failures) {
        printf("raft-sim: %" PRIu64 " of %" PRIu64 " seeds failed:", failures, seeds);
        for (int i = 0; i < failed_by.n; i++)
            printf(" %s=%" PRIu64, failed_by.name[i], failed_by.count[i]);
        printf("\n");
    }
    if (!one)
        printf("raft-sim: %" PRIu64 " seeds %s (%" PRIu64 "..%" PRIu64 "): virtual time %.0f s, "
               "events %" PRIu64 ", leader changes %" PRIu64 ", entries committed %" PRIu64
               ", writes acked %" PRIu64 ", reads checked %" PRIu64 ", resets %" PRIu64
               " (forfeits %" PRIu64 ")\n",
               seeds - failures, failures ? "passed" : "ok", first, first + seeds - 1,
               (double)total.vtime / 1000.0, total.events, total.leader_changes, total.committed,
               total.acked, total.reads_checked, total.resets, total.forfeits);
    if (!one && base_incarnations) {
        printf("raft-sim: new incarnations %" PRIu64 " in %" PRIu64 " runs, replaced (removed "
               "by the policy) %" PRIu64 " in %" PRIu64 " runs\n",
               total.new_incarnations, runs_new_inc, total.replacements, runs_replaced);
        tally_print(&tally, failures ? "of the runs that passed" : NULL, true);
    }
    if (failures)
        return 1;
    return 0;
}
