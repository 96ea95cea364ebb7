namespace IdDisentangle.Bench;

public static class Suite
{
    public static int RunAll(Options o) => throw new NotImplementedException();
}
