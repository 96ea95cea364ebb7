using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using IdDisentangle.Bench;

// Benchmarks of IdDisentangle against a PyTorch-eager reference on the same machine, in the same run.
//   dotnet run -c Release --project bench/IdDisentangle.Bench -- all [--threads 2] [--out bench/results]
//   dotnet run -c Release --project bench/IdDisentangle.Bench -- generator --batch 8 --threads 2   (one JSON line)
//   dotnet run -c Release --project bench/IdDisentangle.Bench -- gemm --threads 2                  (one JSON line)
//   dotnet run -c Release --project bench/IdDisentangle.Bench -- conv-peak --threads 2             (one JSON line)
//   dotnet run -c Release --project bench/IdDisentangle.Bench -- profile --threads 2               (one JSON line)
//   dotnet run -c Release --project bench/IdDisentangle.Bench -- precision --threads 2             (one JSON line)
//   dotnet run -c Release --project bench/IdDisentangle.Bench -- winograd --threads 2              (one JSON line)
//   dotnet run -c Release --project bench/IdDisentangle.Bench -- output-size --threads 2           (one JSON line)
//   dotnet run -c Release --project bench/IdDisentangle.Bench -- inference --batch 8 --threads 2     (one JSON line)
//   dotnet run -c Release --project bench/IdDisentangle.Bench -- train-step --batch 6 --threads 2    (one JSON line)
//   dotnet run -c Release --project bench/IdDisentangle.Bench -- train-step --impl bf16 --threads 2  (one JSON line)
//   dotnet run -c Release --project bench/IdDisentangle.Bench -- train-precision --threads 2         (one JSON line)
//   dotnet run -c Release --project bench/IdDisentangle.Bench -- video --threads 2 [--iters FRAMES]  (one JSON line)
//   dotnet run -c Release --project bench/IdDisentangle.Bench -- colour-match [--iters PHOTOS]        (one JSON line)
// dotnet run -c Release --project bench/IdDisentangle.Bench -- face-crop [--images DIR]          (calibrates
// FaceCrop.FfhqFaceApi)
// Each benchmark process takes the tunables the matching iddis command would: the training ones as `iddis train`, the
// others as the commands that render (CliApp.HeapUseOf). `all` only starts processes, ours and PyTorch's, and
// keeps its environment as started so that the PyTorch side inherits none of ours.
if (args.Length > 0 && args[0] != "all")
    IdDisentangle.Runtime.HugePages.RestartWithHugePagesIfUseful(args, Suite.HeapUseOf(args[0]));
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var opts = Options.Parse(args);
return opts.Command switch
{
    "gemm" => Emit(Benchmarks.Gemm(opts)),
    "conv-peak" => Emit(Benchmarks.ConvPeak(opts)),
    "winograd" => Emit(WinogradBenchmark.Run(opts)),
    "generator" => Emit(Benchmarks.Generator(opts)),
    "profile" => Emit(GeneratorProfile.Run(opts)),
    "precision" => Emit(PrecisionBenchmark.Run(opts)),
    "output-size" => Emit(Benchmarks.OutputSize(opts)),
    "all" => Suite.RunAll(opts),
    "face-crop" => FaceCropSearch.Run(opts),
    "inference" => Emit(PipelineBenchmarks.Inference(opts)),
    "train-step" => Emit(PipelineBenchmarks.TrainStep(opts)),
    "train-precision" => Emit(PipelineBenchmarks.TrainPrecision(opts)),
    "video" => Emit(VideoBenchmark.Run(opts)),
    "colour-match" => Emit(ColourMatchBenchmark.Run(opts)),
    _ => Usage(),
};

static int Emit(Dictionary<string, object> result)
{
    Console.WriteLine(JsonSerializer.Serialize(result));
    return 0;
}

static int Usage()
{
    Console.Error.WriteLine(
        "usage: IdDisentangle.Bench (all|gemm|conv-peak|generator|profile|precision|winograd|output-size|inference|train-step|train-precision|video|colour-match|face-crop) [--batch N] [--threads N] [--iters N] [--impl NAME] [--out DIR] [--images DIR]"
    );
    return 2;
}
