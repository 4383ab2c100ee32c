"""Face geometry shared by every stage: landmark layout, Umeyama alignment, masks, the store."""
