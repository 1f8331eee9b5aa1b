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

NB_MODULE(_core, mod) {
  nb::class_<Spectrum>(mod, "Spectrum")
      .def(
          "__init__",
          [](Spectrum* self, std::vector<double> eigenvalues, std::vector<double> mean) {
            Spectrum s{std::move(eigenvalues), std::move(mean)};
            validate_spectrum(s);
            new (self) Spectrum(std::move(s));
          },
          "eigenvalues"_a, "mean"_a)
      .def_prop_ro("eigenvalues",
                   [](const Spectrum& s) {
                     return Eigen::VectorXd(Eigen::Map<const Eigen::VectorXd>(
                         s.eigenvalues.data(), static_cast<Eigen::Index>(s.eigenvalues.size())));
                   })
      .def_prop_ro("mean", [](const Spectrum& s) {
        return Eigen::VectorXd(
            Eigen::Map<const Eigen::VectorXd>(s.mean.data(), static_cast<Eigen::Index>(s.mean.size())));
      });

  nb::class_<Problem>(mod, "Problem")
      .def(
          "__init__",
          [](Problem* self, double alpha, double delta, double rho, double theta, std::optional<double> theta_plus,
             std::optional<double> theta_minus, std::optional<Spectrum> spectrum) {
            Problem p{alpha, delta, rho, theta, theta_plus, theta_minus, std::move(spectrum)};
            validate(p);
            new (self) Problem(std::move(p));
          },
          "alpha"_a = Problem{}.alpha, "delta"_a = Problem{}.delta, "rho"_a = Problem{}.rho,
          "theta"_a = Problem{}.theta, "theta_plus"_a = nb::none(), "theta_minus"_a = nb::none(),
          "spectrum"_a = nb::none())
      .def_ro("alpha", &Problem::alpha)
      .def_ro("delta", &Problem::delta)
      .def_ro("rho", &Problem::rho)
      .def_ro("theta", &Problem::theta)
      .def_ro("theta_plus", &Problem::theta_plus)
      .def_ro("theta_minus", &Problem::theta_minus)
      .def_ro("spectrum", &Problem::spectrum);

  nb::class_<Stage>(mod, "Stage")
      .def(
          "__init__",
          [](Stage* self, double lam, std::optional<double> beta, bool hard, const std::string& bias, double bias_value,
             double xi) {
            new (self) Stage{lam, hard ? Targets::hard : Targets::soft, beta, parse_bias(bias), bias_value, xi};
          },
          "lam"_a, "beta"_a = nb::none(), "hard"_a = false, "bias"_a = "learn", "bias_value"_a = 0.0, "xi"_a = 1.0)
      .def_ro("lam", &Stage::lam)
      .def_ro("beta", &Stage::beta)
      .def_prop_ro("hard", [](const Stage& s) { return s.targets == Targets::hard; })
      .def_prop_ro("bias", [](const Stage& s) { return to_string(s.bias); })
      .def_ro("bias_value", &Stage::bias_value)
      .def_ro("xi", &Stage::xi);

  nb::class_<TheoryResult>(mod, "TheoryResult")
      .def_ro("method", &TheoryResult::method)
      .def_ro("eps", &TheoryResult::eps)
      .def_ro("eps_error", &TheoryResult::eps_error)
      .def_ro("m", &TheoryResult::m)
      .def_ro("b", &TheoryResult::b)
      .def_ro("mh", &TheoryResult::mh)
      .def_ro("conditioning", &TheoryResult::conditioning)
      .def_ro("Q", &TheoryResult::Q)
      .def_ro("q", &TheoryResult::q)
      .def_ro("chi", &TheoryResult::chi)
      .def_ro("Qh", &TheoryResult::Qh)
      .def_ro("chih", &TheoryResult::chih)
      .def_ro("iterations", &TheoryResult::iterations)
      .def_ro("residual", &TheoryResult::residual)
      .def_ro("converged", &TheoryResult::converged)
      .def_ro("collapsed", &TheoryResult::collapsed)
      .def_ro("gh_nodes", &TheoryResult::gh_nodes)
      .def_ro("qmc_points", &TheoryResult::qmc_points)
      .def_ro("qmc_gh_nodes", &TheoryResult::qmc_gh_nodes)
      .def_ro("accuracy_reached", &TheoryResult::accuracy_reached);

  // Options cross as structs with named fields: swapping two fields cannot silently swap two integers.
  nb::class_<IntegrationOptions>(mod, "IntegrationOptions")
      .def(nb::init<>())
      .def_rw("gh_nodes", &IntegrationOptions::gh_nodes)
      .def_rw("qmc_gh_nodes", &IntegrationOptions::qmc_gh_nodes)
      .def_rw("split_nodes", &IntegrationOptions::split_nodes)
      .def_rw("qmc_points", &IntegrationOptions::qmc_points)
      .def_rw("qmc_replicates", &IntegrationOptions::qmc_replicates)
      .def_rw("mc_samples", &IntegrationOptions::mc_samples)
      .def_rw("seed", &IntegrationOptions::seed)
      .def_rw("prune", &IntegrationOptions::prune)
      .def_rw("qmc_prune", &IntegrationOptions::qmc_prune);

  nb::class_<FixedPointOptions>(mod, "FixedPointOptions")
      .def(nb::init<>())
      .def_rw("tol", &FixedPointOptions::tol)
      .def_rw("max_iter", &FixedPointOptions::max_iter);

  nb::class_<TheoryOptions>(mod, "TheoryOptions")
      .def(nb::init<>())
      .def_prop_rw(
          "method", [](const TheoryOptions& o) { return to_string(o.method); },
          [](TheoryOptions& o, const std::string& name) { o.method = parse_method(name); })
      .def_rw("integration", &TheoryOptions::integration)
      .def_rw("fixed_point", &TheoryOptions::fixed_point)
      .def_rw("estimate_error", &TheoryOptions::estimate_error)
      .def_rw("accuracy", &TheoryOptions::accuracy)
      .def_rw("threads", &TheoryOptions::threads);

  mod.def(
      "solve_state_evolution",
      [](const Problem& problem, const std::vector<Stage>& stages, const std::string& loss, const TheoryOptions& opt) {
        const Loss l = parse_loss(loss);
        nb::gil_scoped_release release;
        return solve_state_evolution(problem, stages, l, opt);
      },
      "problem"_a, "stages"_a, "loss"_a, "options"_a);

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
      .def_ro("q", &StageOutcome::q)
      .def_ro("b", &StageOutcome::b)
      .def_ro("train_error", &StageOutcome::train_error)
      .def_ro("targets_vs_true", &StageOutcome::targets_vs_true)
      .def_ro("targets_vs_noisy", &StageOutcome::targets_vs_noisy)
      .def_ro("fit", &StageOutcome::fit);

  nb::class_<TrialOutcome>(mod, "TrialOutcome").def_ro("stages", &TrialOutcome::stages);

  nb::class_<TrainOptions>(mod, "TrainOptions")
      .def(nb::init<>())
      .def_rw("tol", &TrainOptions::tol)
      .def_rw("max_newton", &TrainOptions::max_newton)
      .def_rw("threads", &TrainOptions::threads);

  nb::class_<SimulationOptions>(mod, "SimulationOptions")
      .def(nb::init<>())
      .def_rw("N", &SimulationOptions::N)
      .def_rw("trials", &SimulationOptions::trials)
      .def_rw("seed", &SimulationOptions::seed)
      .def_rw("threads", &SimulationOptions::threads)
      .def_rw("train", &SimulationOptions::train);

  mod.def(
      "simulate",
      [](const Problem& problem, const std::vector<Stage>& stages, const std::string& loss,
         const SimulationOptions& opt) {
        const Loss l = parse_loss(loss);
        nb::gil_scoped_release release;
        return simulate(problem, stages, l, opt);
      },
      "problem"_a, "stages"_a, "loss"_a, "options"_a);

  mod.def("training_size", &training_size, "problem"_a, "N"_a);

  nb::class_<LinearModel>(mod, "LinearModel")
      .def(nb::init<>())
      .def_rw("w", &LinearModel::w)
      .def_rw("B", &LinearModel::B);

  // Fits `model` in place (its w and B are the warm start); returns the training logits and the report.
  mod.def(
      "fit_linear",
      [](nb::DRef<const RowMatrix> X, const Eigen::VectorXd& y, const Eigen::VectorXd& weight, const std::string& loss,
         double lam, bool learn_bias, LinearModel& model, const TrainOptions& opt) {
        const Loss l = parse_loss(loss);
        Eigen::VectorXd logits;
        TrainReport rep;
        {
          nb::gil_scoped_release release;
          rep = fit_linear(X, y, weight, l, lam, learn_bias, model, logits, opt);
        }
        return std::make_tuple(logits, rep);
      },
      "X"_a, "y"_a, "weight"_a, "loss"_a, "lam"_a, "learn_bias"_a, "model"_a, "options"_a);

  mod.def("draw_dataset", [](const Problem& problem, int N, std::uint64_t seed, std::uint64_t trial) {
    Dataset d = draw_dataset(problem, N, seed, trial);
    return std::make_tuple(std::move(d.X), std::move(d.s), std::move(d.y_true), std::move(d.y_noisy));
  });
}
