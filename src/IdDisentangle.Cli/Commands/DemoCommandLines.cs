using IdDisentangle.Reporting;
using IdDisentangle.Runs;
using IdDisentangle.Runtime;

namespace IdDisentangle.Cli.Commands;

/// <summary>The iddis command lines that do the demo's stages by hand, for its report.</summary>
internal static class DemoCommandLines
{
    public static string Describe(DemoWork work) =>
        work switch
        {
            DemoWork.FetchNetworks f => "iddis models fetch"
                + (f.ModelsDir is null ? "" : $" --models-dir {f.ModelsDir}"),
            DemoWork.ChooseGenerator => "(none: the file given, $IDDIS_GENERATOR, or the untrained one written here)",
            DemoWork.GenerateData g =>
                $"iddis generate-data --generator {g.Generator} --num-images {g.Options.NumImages} "
                    + $"--truncation {g.Options.Truncation} --seed {g.Options.Seed} --out {g.Options.OutDir}"
                    + (g.OutputSize > 0 ? $" --output-size {g.OutputSize}" : "")
                    + Precision(g.Precision),
            DemoWork.Train t => TrainCommand.CommandLine(t.Config) + " --resume",
            DemoWork.Infer i => $"iddis infer grid --run {i.RunDir} --id-dir IDS --attr-dir ATTRS --out {i.OutDir}"
                + Precision(i.Precision),
            DemoWork.Report r => $"iddis demo --out {r.OutDir}",
            DemoWork.RealFaces f => $"iddis align --input-dir {f.Dir} --out aligned --all-faces; "
                + $"iddis landmarks --detect --net dlib {f.Dir}/*.jpg --out landmarks.npy --draw drawn",
            _ => "",
        };

    static string Precision(ComputePrecision p) => p == ComputePrecision.Fp32 ? "" : " --precision bf16";
}
