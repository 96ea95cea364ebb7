namespace IdDisentangle.Bench;

internal sealed record Options(
    string Command,
    int Batch,
    int Threads,
    int Iters,
    int Size,
    string Impl,
    string OutDir,
    string? Images = null
)
{
    public static Options Parse(string[] args)
    {
        string cmd = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : "all";
        int batch = 1,
            threads = Environment.ProcessorCount,
            iters = 0,
            size = 256;
        string impl = "activation-modulation",
            outDir = "bench/results";
        string? images = null;
        for (int i = 0; i < args.Length - 1; i++)
        {
            switch (args[i])
            {
                case "--batch":
                    batch = int.Parse(args[++i]);
                    break;
                case "--threads":
                    threads = int.Parse(args[++i]);
                    break;
                case "--iters":
                    iters = int.Parse(args[++i]);
                    break;
                case "--size":
                    size = int.Parse(args[++i]);
                    break;
                case "--impl":
                    impl = args[++i];
                    break;
                case "--out":
                    outDir = args[++i];
                    break;
                case "--images":
                    images = args[++i];
                    break;
            }
        }
        return new Options(cmd, batch, threads, iters, size, impl, outDir, images);
    }
}
