/* parallel.c - the batch runner of the libdam runtime (dam_parallel_for).
 *
 * Runs job(i, user) for every i in [0, count) on a small pool of POSIX
 * threads.  Workers take the next index from a shared atomic counter, so
 * uneven jobs (a run that diverges early next to one that runs to t_end)
 * balance themselves.  Jobs are independent and write only their own
 * results, so the outcome does not depend on the thread count or on the
 * order in which jobs run.  With one thread, fewer than two jobs, or when
 * threads cannot be created, the jobs run inline on the caller's thread.
 */
#include "dam_integrate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct ParPool {
	int64_t count;
	_Atomic int64_t next;
	void (*job)(int64_t i, void *user);
	void *user;
} ParPool;

static void *par_worker(void *arg)
{
	ParPool *p = arg;
	for (;;) {
		int64_t i = atomic_fetch_add(&p->next, 1);
		if (i >= p->count)
			break;
		p->job(i, p->user);
	}
	return NULL;
}

static int par_thread_count(int64_t count, int nthreads)
{
	long want = nthreads > 0 ? nthreads : sysconf(_SC_NPROCESSORS_ONLN);
	if (want < 1)
		want = 1;
	if (want > count)
		want = (long)count;
	return (int)want;
}

void dam_parallel_for(int64_t count, int nthreads, void (*job)(int64_t i, void *user), void *user)
{
	int nt = count < 2 ? 1 : par_thread_count(count, nthreads);
	ParPool pool = {.count = count, .job = job, .user = user};
	atomic_init(&pool.next, 0);
	pthread_t *tid = nt > 1 ? malloc((size_t)nt * sizeof *tid) : NULL;
	int started = 0;
	if (tid) {
		/* The caller's thread is worker 0; start the others. */
		while (started < nt - 1 && pthread_create(&tid[started], NULL, par_worker, &pool) == 0)
			started++;
	}
	par_worker(&pool);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	free(tid);
}
