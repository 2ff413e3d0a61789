# Sourced by tests/mpi_*.sh (after MAE=$1 SRC=$2): skips (77) when mpirun is missing, mae was built without MPI, or
# mpirun cannot start 2 processes here; sets PY, tmp, ok/bad (lib/common.sh), MPIRUN and mpi2.
source "$SRC/tests/lib/common.sh"
command -v mpirun >/dev/null || { echo "skip: no mpirun"; exit 77; }
"$MAE" --version 2>&1 | grep -q "mpi: yes" || { echo "skip: mae built without MPI"; exit 77; }

# Containers: no CMA for shared-memory copies; root needs the explicit flag; 2 ranks may exceed the cores we have;
# --bind-to none so a rank's threads are not all pinned to one core.
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl=self,vader,tcp
unset OMP_NUM_THREADS
# Under AddressSanitizer (tools/sanitize.sh): leak checking off for MPI jobs only — OpenMPI's plugins leave
# allocations that LeakSanitizer cannot attribute (their frames have no symbols, so no suppression matches); memory
# errors are still caught, and our own leaks by the single-process tests.
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
timeout 60 "${MPIRUN[@]}" -np 2 true >"$tmp/mpi_probe" 2>&1 ||
  { echo "skip: mpirun cannot start 2 processes here: $(head -c 400 "$tmp/mpi_probe")"; exit 77; }
mpi2() { timeout 120 "${MPIRUN[@]}" -np 2 "$MAE" "$@"; }
