namespace IdDisentangle.Runtime;

/// <summary>
/// TorchSharp leaves small native objects to finalizers: the Scalar of each number its own operators hand libtorch
/// (the library's numbers go through <see cref="KeptScalars"/>, which frees them at once; this was written when they
/// did not), tensor handles no scope owns. Left to the collector, thousands of these small blocks stay live in glibc's
/// heap among the freed blocks of large activations, which then cannot merge: a forward pass finds no hole for its
/// largest tensor, the heap grows by one and the pages are faulted afresh, forward after forward until a collection
/// happens to run (bench/README.md). Collecting the youngest generation after each unit of work frees them while
/// their neighbours are still free.
/// </summary>
internal static class NativeGarbage
{
    /// <summary>Frees the native objects the last unit of work left to finalizers (a gen-0 collection: ~2 ms).</summary>
    public static void Release()
    {
        GC.Collect(0, GCCollectionMode.Forced, blocking: true);
        GC.WaitForPendingFinalizers();
    }
}
