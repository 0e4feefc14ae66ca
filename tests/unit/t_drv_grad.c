/* t_drv_grad.c - the discrete adjoint of forward Euler against finite differences.
 *
 * For (a) an XOR model with a learned pattern matrix and bias, (b) Hamming(7,4)
 * (examples/hamming74.dam, its constants as parameters) and (c)
 * examples/parity_et.dam with the published checkpoint, the gradient that
 * grad_run computes from the compiled vector-Jacobian products (jit_grad.h)
 * is compared entry by entry, for every parameter tensor, with central
 * differences of the same discrete loss, each side computed by re-running
 * the gradient module's forward Euler (grad_loss, the tensor perturbed
 * through grad_set_tensor; its loss is first checked against a DamSim's).
 * Constants the front end derived from learned tensors (hopf.xi =
 * hopf_raw^2, W = xi, a bias over xi) are computed by setup in the gradient
 * module, so the parameters are the learned tensors themselves.  The error of an entry is
 * |g - fd| / max(|g|, |fd|, 1e-3 * max |g| over the tensor); the worst per
 * tensor is printed with diag and must be <= 1e-6.  Checkpointing with
 * several segment lengths gives the same gradient bit for bit.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend.h"
#include "grad.h"
#include "jit.h"
#include "sim.h"
#include "tap.h"

static const char xor_src[] =
	"import \"lagrangians\"\n"
	"param beta = 8\n"
	"input bits[2]\n"
	"layer v[3] : identity tau = 1.0\n"
	"layer h[4] : softmax(beta) tau = 0.1\n"
	"learn xi[4, 3] = [[0.1, 0.05, 0.02], [0.03, 0.9, 1.1], [0.95, 0.1, 0.9], [1.05, 0.92, 0.08]]\n"
	"learn hb[4] = [0.1, -0.2, 0.05, 0.15]\n"
	"weights W : h -- v = xi\n"
	"bias h[mu] = hb[mu] - 0.5 * sum(i, xi[mu, i]^2)\n"
	"clamp v[0:2] = bits\n"
	"init  v = [0, 0, 0.5]\n"
	"output y = v[2]\n";

static double sim_loss(DamSim *s, double dt, int nsteps, int output, const double *target)
{
	DamRunOpts o;
	dam_run_opts_default(&o);
	o.dt = dt;
	o.t_end = dt * nsteps;
	o.check_every = nsteps;
	o.energy_tol = 1e300;
	DamRunResult r;
	sim_run(s, &o, &r, NULL, NULL, NULL, 0);
	if (r.steps != nsteps)
		diag("sim ran %lld steps, not %d", (long long)r.steps, nsteps);
	size_t no = sim_output_size(s);
	double *out = malloc(no * sizeof *out), loss = 0;
	sim_outputs(s, out);
	const Model *m = sim_model(s);
	size_t off = 0;
	for (int i = 0; i < output; i++)
		off += (size_t)(m->outputs[i].rank == 0 ? 1 : m->outputs[i].n);
	for (int64_t i = 0; i < (m->outputs[output].rank == 0 ? 1 : m->outputs[output].n); i++) {
		double e = out[off + (size_t)i] - target[i];
		loss += e * e;
	}
	free(out);
	return loss;
}

typedef struct Case {
	const char *what;
	Model *m;
	Jit *jit;
	const double *input;
	size_t ninput;
	int output;
	const double *target;
	double dt;
	int nsteps;
	int xent_class;         /* >= 0: also check cross-entropy on this class plus the settling penalty */
} Case;

/* The worst error of one tensor's entries against central differences. */
static double check_tensor(const Case *C, DamGrad *G, const GradLoss *L, TensorId t, const double *g, double *gmax)
{
	int64_t n = sym_tensor_size(C->m->sym, t);
	double *v = malloc((size_t)n * sizeof *v), *fd = malloc((size_t)n * sizeof *fd);
	memcpy(v, C->m->tensors[t].data, (size_t)n * sizeof *v);
	for (int64_t e = 0; e < n; e++) {
		double h = 1e-5 * fmax(1.0, fabs(v[e])), keep = v[e];
		v[e] = keep + h;
		grad_set_tensor(G, t, v);
		double lp = grad_loss_ex(G, C->dt, C->nsteps, L, NULL);
		v[e] = keep - h;
		grad_set_tensor(G, t, v);
		double lm = grad_loss_ex(G, C->dt, C->nsteps, L, NULL);
		v[e] = keep;
		fd[e] = (lp - lm) / (2 * h);
	}
	grad_set_tensor(G, t, v);
	*gmax = 0;
	for (int64_t e = 0; e < n; e++)
		*gmax = fmax(*gmax, fabs(g[e]));
	double worst = 0;
	for (int64_t e = 0; e < n; e++) {
		double den = fmax(fmax(fabs(g[e]), fabs(fd[e])), 1e-3 * *gmax);
		double err = den > 0 ? fabs(g[e] - fd[e]) / den : 0;
		worst = fmax(worst, err);
	}
	free(v);
	free(fd);
	return worst;
}

static void check_all(const Case *C, DamGrad *G, const GradLoss *L, const double *g, const char *what)
{
	for (int i = 0; i < grad_nparams(G); i++) {
		TensorId t = grad_param(G, i);
		double gmax;
		double worst = check_tensor(C, G, L, t, g + grad_param_offset(G, i), &gmax);
		diag("%s (%s): d loss / d %s (%s, %lld values, max |g| %.3g): worst relative error vs central differences "
		     "%.3g", C->what, what, sym_tensor_name(C->m->sym, t),
		     C->m->tensors[t].kind == MT_LEARN ? "learn" : "const", (long long)sym_tensor_size(C->m->sym, t), gmax,
		     worst);
		ok(worst <= 1e-6, "%s (%s): gradient of %s agrees with finite differences to 1e-6", C->what, what,
		   sym_tensor_name(C->m->sym, t));
	}
}

static void run_case(const Case *C, unsigned flags)
{
	char err[512] = "";
	DamSim *s = sim_new(C->m, C->jit);
	sim_set_input(s, 0, C->input, C->ninput, NULL, 0);
	DamGrad *G = grad_new(C->m, flags, err, sizeof err);
	if (!ok(G != NULL, "%s: the gradient module compiles", C->what)) {
		diag("%s", err);
		sim_free(s);
		return;
	}
	grad_set_input(G, 0, C->input, C->ninput);
	size_t ng = grad_size(G);
	double *g = calloc(ng + 1, sizeof *g), *g2 = calloc(ng + 1, sizeof *g2), *g3 = calloc(ng + 1, sizeof *g3);
	double loss = grad_run(G, C->dt, C->nsteps, 0, C->output, C->target, g);
	double lsim = sim_loss(s, C->dt, C->nsteps, C->output, C->target);
	diag("%s: loss %.17g (simulator %.17g), %d parameter tensors, %zu values", C->what, loss, lsim,
	     grad_nparams(G), ng);
	ok(fabs(loss - lsim) <= 1e-12 * fmax(1.0, fabs(lsim)), "%s: the gradient run's loss is the simulator's",
	   C->what);
	grad_run(G, C->dt, C->nsteps, 1, C->output, C->target, g2);
	grad_run(G, C->dt, C->nsteps, C->nsteps, C->output, C->target, g3);
	ok(memcmp(g, g2, ng * sizeof *g) == 0 && memcmp(g, g3, ng * sizeof *g) == 0,
	   "%s: checkpoints every sqrt(N), 1 and N steps give the same gradient bit for bit", C->what);
	GradLoss sq = { .output = C->output, .kind = GRAD_LOSS_SQUARED, .target = C->target };
	check_all(C, G, &sq, g, "squared error");
	{
		/* the data term read at a quarter, a half and the end of the run (train.readout) */
		const int64_t at[2] = { C->nsteps / 4, C->nsteps / 2 };
		GradLoss ro = { .output = C->output, .kind = GRAD_LOSS_SQUARED, .target = C->target, .readout = at,
		                .nreadout = 2 };
		double lr = grad_run_ex(G, C->dt, C->nsteps, 0, &ro, g, NULL);
		grad_run_ex(G, C->dt, C->nsteps, 1, &ro, g2, NULL);
		grad_run_ex(G, C->dt, C->nsteps, C->nsteps, &ro, g3, NULL);
		double lsum = sim_loss(s, C->dt, (int)at[0], C->output, C->target) +
		              sim_loss(s, C->dt, (int)at[1], C->output, C->target) +
		              sim_loss(s, C->dt, C->nsteps, C->output, C->target);
		diag("%s: readouts at steps %lld, %lld, %d: loss %.17g, mean of the simulator's %.17g", C->what,
		     (long long)at[0], (long long)at[1], C->nsteps, lr, lsum / 3);
		ok(fabs(lr - lsum / 3) <= 1e-12 * fmax(1.0, fabs(lsum)) && lr == grad_loss_ex(G, C->dt, C->nsteps, &ro, NULL),
		   "%s: the loss over three readouts is the mean of the simulator's losses there", C->what);
		ok(memcmp(g, g2, ng * sizeof *g) == 0 && memcmp(g, g3, ng * sizeof *g) == 0,
		   "%s: with readouts, checkpoints every sqrt(N), 1 and N steps give the same gradient bit for bit", C->what);
		check_all(C, G, &ro, g, "squared error read three times");
		grad_run(G, C->dt, C->nsteps, 0, C->output, C->target, g);
	}
	if (C->xent_class >= 0) {
		/* cross-entropy on the output plus the settling penalty on the first layer (the
		 * weight keeps both terms of order 1, so that differences of the sum resolve each) */
		double cls = C->xent_class, parts[2];
		unsigned char *on = calloc((size_t)C->m->nlayers, 1);
		on[0] = 1;
		GradLoss xe = { .output = C->output, .kind = GRAD_LOSS_XENT, .target = &cls, .settle = 1e-3,
		                .settle_layers = on };
		double lx = grad_run_ex(G, C->dt, C->nsteps, 0, &xe, g, parts);
		double lf = grad_loss_ex(G, C->dt, C->nsteps, &xe, NULL);
		diag("%s: cross-entropy %.6g + settling penalty %.6g", C->what, parts[0], parts[1]);
		ok(lx == lf && parts[1] > 0 && parts[0] > 0, "%s: cross-entropy and penalty are positive and the gradient "
		   "run's loss is the forward run's", C->what);
		check_all(C, G, &xe, g, "cross-entropy + settling");
		free(on);
	}
	free(g);
	free(g2);
	free(g3);
	grad_free(G);
	sim_free(s);
}

/* Compile the model at path (with one -D define or none), then run_case on
 * it; output names the loss's output (NULL: C.output as given). */
static void run_model(const char *path, const char *define, const char *compiles, const char *output, Case C)
{
	Arena a;
	Diags d;
	arena_init(&a);
	diags_init(&d, &a);
	const char *dv[1] = { define };
	FrontendOptions fo = { define ? dv : NULL, define ? 1 : 0, NULL, NULL, 0 };
	Model *m = dam_frontend_compile(path, &fo, &d, &a);
	if (!m)
		diag("front end failed on %s", path);
	char err[512] = "";
	Jit *j = m ? jit_compile(m, NULL, err, sizeof err) : NULL;
	if (ok(j != NULL, "%s", compiles)) {
		C.m = m;
		C.jit = j;
		if (output)
			C.output = model_find(m, MODEL_OUTPUT, output);
		run_case(&C, JIT_GRAD_CONSTS);
	} else {
		diag("%s", err);
	}
	jit_free(j);
	diags_free(&d);
	arena_free(&a);
}

static void test_xor(void)
{
	char dir[] = "/tmp/t_drv_grad.XXXXXX", path[64];
	if (!ok(mkdtemp(dir) != NULL, "xor: temporary directory"))
		return;
	snprintf(path, sizeof path, "%s/xor_learn.dam", dir);
	FILE *f = fopen(path, "w");
	fputs(xor_src, f);
	fclose(f);
	static const double bits[2] = {1, 0}, target[1] = {1.0};
	run_model(path, NULL, "xor: the learned model compiles", NULL,
	          (Case){ "xor", NULL, NULL, bits, 2, 0, target, 1e-2, 200, -1 });
	unlink(path);
	rmdir(dir);
}

static void test_parity(void)
{
	const char *npz = DAM_SOURCE_DIR "/../shared/data/published/analog-denseam-parity/model_best.npz";
	if (access(npz, R_OK) != 0) {
		diag("no checkpoint at %s", npz);
		skip(1, "parity: no published checkpoint");
		return;
	}
	char def[512];
	snprintf(def, sizeof def, "weights=%s", npz);
	static const double tok[8] = {1, 0, 1, 1, 0, 0, 1, 0}, target[2] = {0.0, 1.0};
	run_model(DAM_SOURCE_DIR "/examples/parity_et.dam", def, "parity: parity_et compiles", "logits",
	          (Case){ "parity", NULL, NULL, tok, 8, 0, target, 1e-3, 50, 1 });
}

/* Hamming(7,4) (examples/hamming74.dam): 16 x 7 patterns and their biases as
 * parameters (JIT_GRAD_CONSTS), squared error of the relaxed word against its codeword. */
static void test_hamming(void)
{
	/* codeword 0110011 with its last bit flipped */
	static const double word[7] = {0, 1, 1, 0, 0, 1, 0}, target[7] = {0, 1, 1, 0, 0, 1, 1};
	run_model(DAM_SOURCE_DIR "/examples/hamming74.dam", NULL, "hamming: hamming74 compiles", NULL,
	          (Case){ "hamming", NULL, NULL, word, 7, 0, target, 1e-2, 100, -1 });
}

int main(void)
{
	test_xor();
	test_hamming();
	test_parity();
	return done_testing();
}
