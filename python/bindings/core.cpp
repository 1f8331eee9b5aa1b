// nanobind module sdgmm._core: type translation only. Strings become enums through the C++
// parsers, std::invalid_argument becomes ValueError, Eigen arrays become NumPy arrays.
#include <nanobind/eigen/dense.h>
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include "sdgmm/simulate.hpp"
#include "sdgmm/state_evolution.hpp"

namespace nb = nanobind;
using namespace nb::literals;
using namespace sdgmm;

namespace {

MethodChoice parse_method(const std::string& name) {
  if (name == "auto") return MethodChoice::automatic;
  if (name == "tensor") return MethodChoice::tensor;
  if (name == "qmc") return MethodChoice::qmc;
  if (name == "mc") return MethodChoice::mc;
  throw std::invalid_argument("method must be 'auto', 'tensor', 'qmc' or 'mc' (got '" + name + "')");
}

}  // namespace

NB_MODULE(_core, mod) {
  nb::class_<Problem>(mod, "Problem")
      .def(
          "__init__",
          [](Problem* self, double alpha, double delta, double rho, double theta, std::optional<double> theta_plus,
             std::optional<double> theta_minus) {
            Problem p{alpha, delta, rho, theta, theta_plus, theta_minus};
            validate(p);
            new (self) Problem(p);
          },
          "alpha"_a = Problem{}.alpha, "delta"_a = Problem{}.delta, "rho"_a = Problem{}.rho,
          "theta"_a = Problem{}.theta, "theta_plus"_a = nb::none(), "theta_minus"_a = nb::none())
      .def_ro("alpha", &Problem::alpha)
      .def_ro("delta", &Problem::delta)
      .def_ro("rho", &Problem::rho)
      .def_ro("theta", &Problem::theta)
      .def_ro("theta_plus", &Problem::theta_plus)
      .def_ro("theta_minus", &Problem::theta_minus);

  nb::class_<Stage>(mod, "Stage")
      .def(
          "__init__",
          [](Stage* self, double lam, std::optional<double> beta, bool hard, const std::string& bias,
             double bias_value) {
            new (self) Stage{lam, hard ? Targets::hard : Targets::soft, beta, parse_bias(bias), bias_value};
          },
          "lam"_a, "beta"_a = nb::none(), "hard"_a = false, "bias"_a = "learn", "bias_value"_a = 0.0)
      .def_ro("lam", &Stage::lam)
      .def_ro("beta", &Stage::beta)
      .def_prop_ro("hard", [](const Stage& s) { return s.targets == Targets::hard; })
      .def_prop_ro("bias", [](const Stage& s) { return to_string(s.bias); })
      .def_ro("bias_value", &Stage::bias_value);

  nb::class_<TheoryResult>(mod, "TheoryResult")
      .def_ro("method", &TheoryResult::method)
      .def_ro("eps", &TheoryResult::eps)
      .def_ro("eps_error", &TheoryResult::eps_error)
      .def_ro("m", &TheoryResult::m)
      .def_ro("b", &TheoryResult::b)
      .def_ro("mh", &TheoryResult::mh)
      .def_ro("conditioning", &TheoryResult::conditioning)
      .def_ro("Q", &TheoryResult::Q)
      .def_ro("chi", &TheoryResult::chi)
      .def_ro("Qh", &TheoryResult::Qh)
      .def_ro("chih", &TheoryResult::chih)
      .def_ro("iterations", &TheoryResult::iterations)
      .def_ro("residual", &TheoryResult::residual)
      .def_ro("converged", &TheoryResult::converged)
      .def_ro("collapsed", &TheoryResult::collapsed);

  mod.def(
      "solve_state_evolution",
      [](const Problem& problem, const std::vector<Stage>& stages, const std::string& loss, const std::string& method,
         int gh_nodes, int qmc_gh_nodes, int split_nodes, int qmc_points, int qmc_replicates, int mc_samples,
         std::uint64_t seed, double prune, double tol, int max_iter, bool estimate_error, int threads) {
        TheoryOptions opt;
        opt.method = parse_method(method);
        opt.integration = {Method::tensor, gh_nodes,   qmc_gh_nodes, split_nodes, qmc_points,
                           qmc_replicates, mc_samples, seed,         prune};
        opt.fixed_point.tol = tol;
        opt.fixed_point.max_iter = max_iter;
        opt.estimate_error = estimate_error;
        opt.threads = threads;
        const Loss l = parse_loss(loss);
        nb::gil_scoped_release release;
        return solve_state_evolution(problem, stages, l, opt);
      },
      "problem"_a, "stages"_a, "loss"_a, "method"_a, "gh_nodes"_a, "qmc_gh_nodes"_a, "split_nodes"_a, "qmc_points"_a,
      "qmc_replicates"_a, "mc_samples"_a, "seed"_a, "prune"_a, "tol"_a, "max_iter"_a, "estimate_error"_a, "threads"_a);

  nb::class_<TrainReport>(mod, "TrainReport")
      .def_ro("newton_iterations", &TrainReport::newton_iterations)
      .def_ro("cg_iterations", &TrainReport::cg_iterations)
      .def_ro("passes", &TrainReport::passes)
      .def_ro("grad_norm", &TrainReport::grad_norm)
      .def_ro("grad_norm0", &TrainReport::grad_norm0)
      .def_ro("converged", &TrainReport::converged)
      .def_ro("failure", &TrainReport::failure);

  nb::class_<StageOutcome>(mod, "StageOutcome")
      .def_ro("eps", &StageOutcome::eps)
      .def_ro("m", &StageOutcome::m)
      .def_ro("Q", &StageOutcome::Q)
      .def_ro("b", &StageOutcome::b)
      .def_ro("train_error", &StageOutcome::train_error)
      .def_ro("targets_vs_true", &StageOutcome::targets_vs_true)
      .def_ro("targets_vs_noisy", &StageOutcome::targets_vs_noisy)
      .def_ro("fit", &StageOutcome::fit);

  nb::class_<TrialOutcome>(mod, "TrialOutcome").def_ro("stages", &TrialOutcome::stages);

  mod.def(
      "simulate",
      [](const Problem& problem, const std::vector<Stage>& stages, const std::string& loss, int N, int trials,
         std::uint64_t seed, int threads, double tol, int max_newton) {
        SimulationOptions opt{N, trials, seed, threads, {}};
        opt.train.tol = tol;
        opt.train.max_newton = max_newton;
        const Loss l = parse_loss(loss);
        nb::gil_scoped_release release;
        return simulate(problem, stages, l, opt);
      },
      "problem"_a, "stages"_a, "loss"_a, "N"_a, "trials"_a, "seed"_a, "threads"_a, "tol"_a, "max_newton"_a);

  mod.def("training_size", &training_size, "problem"_a, "N"_a);

  mod.def("simulation_bytes", [](const Problem& problem, int N, int trials, int threads) {
    return simulation_bytes(problem, SimulationOptions{N, trials, 0, threads, {}});
  });

  mod.def(
      "fit_linear",
      [](nb::DRef<const RowMatrix> X, const Eigen::VectorXd& y, const Eigen::VectorXd& weight, const std::string& loss,
         double lam, bool learn_bias, const Eigen::VectorXd& w0, double B0, double tol, int max_newton, int threads) {
        const Loss l = parse_loss(loss);
        LinearModel model{w0, B0};
        Eigen::VectorXd logits;
        TrainOptions opt;
        opt.tol = tol;
        opt.max_newton = max_newton;
        opt.threads = threads;
        TrainReport rep;
        {
          nb::gil_scoped_release release;
          rep = fit_linear(X, y, weight, l, lam, learn_bias, model, logits, opt);
        }
        return std::make_tuple(model.w, model.B, logits, rep);
      },
      "X"_a, "y"_a, "weight"_a, "loss"_a, "lam"_a, "learn_bias"_a, "w0"_a, "B0"_a, "tol"_a, "max_newton"_a,
      "threads"_a);

  mod.def("draw_dataset", [](const Problem& problem, int N, std::uint64_t seed, std::uint64_t trial) {
    Dataset d = draw_dataset(problem, N, seed, trial);
    return std::make_tuple(std::move(d.X), std::move(d.s), std::move(d.y_true), std::move(d.y_noisy));
  });

  mod.def("resolve_method", [](const std::string& method, int T, bool hard) {
    const Method m = resolve_method(parse_method(method), T, hard);
    return std::string(m == Method::tensor ? "tensor" : m == Method::qmc ? "qmc" : "mc");
  });
}
