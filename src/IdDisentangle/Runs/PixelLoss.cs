namespace IdDisentangle.Runs;

/// <summary>Which pixel term the reconstruction loss uses.</summary>
internal enum PixelLoss
{
    /// <summary>0.84 (1 - MS-SSIM) + 0.16 masked L1, the paper's choice.</summary>
    MsSsimL1,

    /// <summary>The masked L1 alone (for resolutions below MS-SSIM's minimum).</summary>
    L1,
}
