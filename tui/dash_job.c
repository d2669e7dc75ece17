/*
 * dash_job.c - background jobs of the dashboard: `lathe data import|dedup|filter|split`,
 * `lathe eval`, `lathe plan`, `lathe train --detach`, each run as this program in a child
 * process of its own session (stdin /dev/null, stdout and stderr to files under
 * WORKSPACE/jobs/), so the dashboard never waits on one. A view polls its job from update:
 * waitpid(WNOHANG), then the progress file the command rewrites (--progress-file: one line,
 * "FRACTION TEXT", replaced by rename so it is never read half written), or else the last
 * "N/M rows" line the command printed on stderr. When the job ends its result is the last lines
 * of its stdout (or, when it failed, of its stderr); the files are removed.
 *
 * Quitting the dashboard leaves a running job going, as it leaves training going.
 */
#include "dash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 64

int lt_dash_spawn(char *const argv[], const char *out_path, const char *err_path, char *err,
                    size_t errlen)
{
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "could not start lathe: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        setsid();
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int er = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || er < 0)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(er, 2);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    return pid;
}

char *lt_dash_slurp(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

/* The last max bytes of a file (NUL-terminated, malloc'd), NULL when it cannot be read. */
static char *slurp_tail(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(max + 1);
    size_t n = 0;
    if (buf) {
        if (fseek(f, 0, SEEK_END) == 0) {
            long end = ftell(f);
            if (end > (long)max)
                fseek(f, end - (long)max, SEEK_SET);
            else
                fseek(f, 0, SEEK_SET);
        }
        n = fread(buf, 1, max, f);
        buf[n] = '\0';
    }
    fclose(f);
    return buf;
}

bool lt_dash_job_start(lt_dash_job *j, const char *workspace, const char *what,
                       char *const argv[], bool progress_file)
{
    if (j->state == LT_JOB_RUNNING)
        return false;
    free(j->out);
    memset(j, 0, sizeof(*j));
    snprintf(j->what, sizeof j->what, "%s", what);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/jobs", workspace);
    mkdir(workspace, 0755);
    mkdir(dir, 0755);
    static unsigned seq;
    seq++;
    snprintf(j->out_path, sizeof j->out_path, "%s/%d-%u.out", dir, (int)getpid(), seq);
    snprintf(j->err_path, sizeof j->err_path, "%s/%d-%u.err", dir, (int)getpid(), seq);
    snprintf(j->prog_path, sizeof j->prog_path, "%s/%d-%u.progress", dir, (int)getpid(), seq);
    char *args[MAX_ARGS + 3];
    int n = 0;
    while (argv[n] && n < MAX_ARGS) {
        args[n] = argv[n];
        n++;
    }
    if (progress_file) {
        args[n++] = "--progress-file";
        args[n++] = j->prog_path;
    } else {
        j->prog_path[0] = '\0';
    }
    args[n] = NULL;
    j->frac = -1;
    j->started = lt_dash_now();
    pid_t pid = lt_dash_spawn(args, j->out_path, j->err_path, j->result[0], sizeof j->result[0]);
    if (pid < 0) {
        j->state = LT_JOB_FAILED;
        j->n_result = 1;
        return false;
    }
    j->pid = pid;
    j->state = LT_JOB_RUNNING;
    return true;
}

/* Keeps the last n non-empty lines of text in j->result. */
static void last_lines(lt_dash_job *j, const char *text)
{
    j->n_result = 0;
    if (!text)
        return;
    const char *end = text + strlen(text);
    const char *starts[LT_JOB_RESULT_LINES];
    size_t lens[LT_JOB_RESULT_LINES];
    int n = 0;
    while (end > text && n < LT_JOB_RESULT_LINES) {
        while (end > text && (end[-1] == '\n' || end[-1] == '\r'))
            end--;
        const char *s = end;
        while (s > text && s[-1] != '\n' && s[-1] != '\r') /* \r: progress lines on a tty */
            s--;
        if (end > s) {
            starts[n] = s;
            lens[n] = (size_t)(end - s);
            n++;
        }
        end = s;
    }
    for (int i = 0; i < n; i++) /* oldest first */
        snprintf(j->result[i], sizeof j->result[i], "%.*s", (int)lens[n - 1 - i],
                 starts[n - 1 - i]);
    j->n_result = n;
}

bool lt_dash_job_parse_rows(const char *text, double *frac, char *note, size_t notesz)
{
    /* the last "N/M rows" in text (lathe eval prints "SYSTEM: N/M rows" off a terminal) */
    const char *best = NULL;
    for (const char *p = strstr(text, " rows"); p; p = strstr(p + 1, " rows"))
        best = p;
    if (!best)
        return false;
    const char *s = best;
    while (s > text && ((s[-1] >= '0' && s[-1] <= '9') || s[-1] == '/'))
        s--;
    long long done, total;
    if (sscanf(s, "%lld/%lld rows", &done, &total) != 2 || total <= 0 || done < 0)
        return false;
    *frac = done >= total ? 1.0 : (double)done / (double)total;
    const char *ls = s;
    while (ls > text && ls[-1] != '\n' && ls[-1] != '\r')
        ls--;
    snprintf(note, notesz, "%.*s", (int)(best + 5 - ls), ls);
    return true;
}

bool lt_dash_job_parse_progress(const char *text, double *frac, char *note, size_t notesz)
{
    char *end = NULL;
    double f = strtod(text, &end);
    if (end == text || !isfinite(f))
        return false;
    *frac = f < 0 ? -1 : f > 1 ? 1 : f;
    while (*end == ' ')
        end++;
    size_t len = strcspn(end, "\n");
    snprintf(note, notesz, "%.*s", (int)len, end);
    return true;
}

static void read_progress(lt_dash_job *j)
{
    char *t = j->prog_path[0] ? lt_dash_slurp(j->prog_path, 512) : NULL;
    bool got = t && lt_dash_job_parse_progress(t, &j->frac, j->note, sizeof j->note);
    free(t);
    if (got)
        return;
    t = slurp_tail(j->err_path, 2048);
    if (t)
        lt_dash_job_parse_rows(t, &j->frac, j->note, sizeof j->note);
    free(t);
}

bool lt_dash_job_poll(lt_dash_job *j)
{
    if (j->state != LT_JOB_RUNNING)
        return false;
    int status;
    pid_t r = waitpid(j->pid, &status, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) {
        char before[sizeof j->note];
        double f = j->frac;
        memcpy(before, j->note, sizeof before);
        read_progress(j);
        return f != j->frac || strcmp(before, j->note) != 0;
    }
    bool ok = r == j->pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    j->ended = lt_dash_now();
    j->pid = 0;
    j->state = ok ? LT_JOB_DONE : LT_JOB_FAILED;
    free(j->out);
    j->out = lt_dash_slurp(j->out_path, 1 << 20);
    char *err = lt_dash_slurp(j->err_path, 1 << 16);
    if (ok)
        last_lines(j, j->out);
    else
        last_lines(j, err && *err ? err : "the job ended without a word (killed?)");
    if (!ok && j->n_result == 0)
        last_lines(j, WIFSIGNALED(status) ? "killed by a signal" : "failed");
    free(err);
    unlink(j->out_path);
    unlink(j->err_path);
    if (j->prog_path[0])
        unlink(j->prog_path);
    return true;
}

void lt_dash_job_clear(lt_dash_job *j)
{
    free(j->out);
    j->out = NULL;
}

void lt_dash_job_draw(const lt_dash *d, const lt_dash_job *j, lt_rect in)
{
    int y = in.y, end = in.y + in.h;
    if (j->state == LT_JOB_NONE) {
        lt_dash_put(d, y, in.x, in.w, LT_STYLE_DIM, "no job yet");
        return;
    }
    char t[32];
    double now = lt_dash_now();
    lt_dash_duration((j->state == LT_JOB_RUNNING ? now : j->ended) - j->started, t, sizeof t);
    const char *state = j->state == LT_JOB_RUNNING ? "running"
                        : j->state == LT_JOB_DONE  ? "done"
                                                   : "FAILED";
    lt_style st = j->state == LT_JOB_RUNNING ? LT_STYLE_TITLE
                  : j->state == LT_JOB_DONE  ? LT_STYLE_OK
                                             : LT_STYLE_ERR;
    int x = in.x + lt_dash_putf(d, y, in.x, in.w, st, "%s %s ", state, t);
    lt_dash_put(d, y++, x, in.x + in.w - x, LT_STYLE_NORMAL, j->what);
    if (y >= end)
        return;
    if (j->state == LT_JOB_RUNNING) {
        int bw = in.w > 12 ? in.w - 7 : in.w;
        if (j->frac >= 0) {
            lt_dash_bar(d, y, in.x, bw, j->frac, LT_STYLE_OK);
            if (bw < in.w)
                lt_dash_putf(d, y, in.x + bw + 1, in.w - bw - 1, LT_STYLE_NORMAL, "%3.0f%%",
                             j->frac * 100);
        } else { /* no fraction known: a block sweeping along the track */
            int inner = bw - 2 > 1 ? bw - 2 : 1;
            int bl = inner / 6 > 1 ? inner / 6 : 1;
            int span = inner - bl > 0 ? inner - bl : 1;
            int pos = (int)fmod((now - j->started) * 8, 2.0 * span);
            if (pos > span)
                pos = 2 * span - pos;
            lt_dash_bar(d, y, in.x, bw, 0, LT_STYLE_DIM);
            lt_dash_blocks(d, y, in.x + 1 + pos, bl, LT_STYLE_OK);
        }
        y++;
        if (y < end && j->note[0])
            lt_dash_put(d, y++, in.x, in.w, LT_STYLE_DIM, j->note);
        return;
    }
    /* finished: its last lines, newest at the bottom, wrapped in a narrow box */
    lt_style rs = j->state == LT_JOB_DONE ? LT_STYLE_NORMAL : LT_STYLE_ERR;
    int rows = end - y, need = 0, first = j->n_result;
    while (first > 0 && in.w > 0) {
        int len = (int)strlen(j->result[first - 1]);
        int h = len / in.w + (len % in.w != 0);
        if (need + h > rows && need > 0)
            break;
        need += h;
        first--;
    }
    for (int i = first; i < j->n_result && y < end; i++) {
        const char *p = j->result[i];
        while (*p && y < end) {
            size_t take = strlen(p);
            if (take > (size_t)in.w) {
                take = (size_t)in.w;
                while (take > 1 && ((unsigned char)p[take] & 0xc0) == 0x80)
                    take--; /* whole UTF-8 characters */
            }
            char chunk[256];
            snprintf(chunk, sizeof chunk, "%.*s", (int)take, p);
            lt_dash_put(d, y++, in.x, in.w, rs, chunk);
            p += take;
        }
    }
}

bool lt_dash_complete(char *buf, size_t size, const char *const *cands, int n)
{
    /* the token after the last ',' is completed */
    char *tok = strrchr(buf, ',');
    tok = tok ? tok + 1 : buf;
    while (*tok == ' ')
        tok++;
    size_t tl = strlen(tok);
    size_t room = size - (size_t)(tok - buf);
    int exact = -1, first = -1, matches = 0;
    char common[256] = "";
    for (int i = 0; i < n; i++) {
        if (strcmp(cands[i], tok) == 0)
            exact = i;
        if (strncmp(cands[i], tok, tl) != 0)
            continue;
        if (matches++ == 0) {
            first = i;
            snprintf(common, sizeof common, "%s", cands[i]);
        } else {
            size_t k = 0;
            while (common[k] && common[k] == cands[i][k])
                k++;
            common[k] = '\0';
        }
    }
    const char *pick = NULL;
    if (exact >= 0 || tl == 0) /* a whole name (or nothing): the next one in turn */
        pick = n ? cands[(exact + 1) % n] : NULL;
    else if (matches == 1)
        pick = cands[first];
    else if (matches > 1 && strlen(common) > tl)
        pick = common;
    if (!pick || strlen(pick) + 1 > room)
        return false;
    memmove(tok, pick, strlen(pick) + 1);
    return true;
}

bool lt_dash_complete_path(char *path, size_t size)
{
    char dir[1024], base[1024];
    const char *slash = strrchr(path, '/');
    if (slash) {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path + 1), path);
        snprintf(base, sizeof base, "%s", slash + 1);
    } else {
        snprintf(dir, sizeof dir, "./");
        snprintf(base, sizeof base, "%s", path);
    }
    DIR *dh = opendir(dir);
    if (!dh)
        return false;
    char best[1024] = "";
    int n = 0;
    struct dirent *e;
    size_t bl = strlen(base);
    while ((e = readdir(dh))) {
        if (strncmp(e->d_name, base, bl) != 0 || strcmp(e->d_name, ".") == 0 ||
            strcmp(e->d_name, "..") == 0)
            continue;
        if (n++ == 0) {
            snprintf(best, sizeof best, "%s", e->d_name);
        } else {
            size_t k = 0;
            while (best[k] && best[k] == e->d_name[k])
                k++;
            best[k] = '\0';
        }
    }
    closedir(dh);
    if (n == 0)
        return false;
    char out[2100];
    snprintf(out, sizeof out, "%s%s", slash ? dir : "", best);
    struct stat sb;
    if (n == 1 && stat(out, &sb) == 0 && S_ISDIR(sb.st_mode) && strlen(out) + 1 < sizeof out)
        strcat(out, "/");
    if (strlen(out) >= size)
        return false;
    memcpy(path, out, strlen(out) + 1);
    return true;
}
